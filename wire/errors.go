package wire

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error a parser returns for bytes that do
// not form a valid packet. Callers drop the datagram and count it; they never
// need the detail to decide anything.
var ErrMalformed = errors.New("wire: malformed packet")

// ErrUnsupportedVersion is returned for a header whose version this
// implementation does not speak.
var ErrUnsupportedVersion = errors.New("wire: unsupported version")

// ErrRange is wrapped by encoders given a field value that does not fit its
// wire field (a frame id above 4095, a cookie longer than MaxCookieLen, ...).
var ErrRange = errors.New("wire: value out of range")

// Pre-built parse errors: parsers run on hostile input, and building an error
// with fmt.Errorf per bad datagram would allocate on that path.
var (
	errShort         = fmt.Errorf("%w: truncated", ErrMalformed)
	errType          = fmt.Errorf("%w: unexpected packet type", ErrMalformed)
	errReservedType  = fmt.Errorf("%w: reserved packet type", ErrMalformed)
	errFlags         = fmt.Errorf("%w: reserved flag set", ErrMalformed)
	errFragment      = fmt.Errorf("%w: fragment index not below count", ErrMalformed)
	errLastFlag      = fmt.Errorf("%w: last-fragment flag disagrees with index and count", ErrMalformed)
	errHeaderVersion = fmt.Errorf("%w: header version", ErrUnsupportedVersion)
	errCookieLen     = fmt.Errorf("%w: cookie too long", ErrMalformed)
	errParams        = fmt.Errorf("%w: transport parameters", ErrMalformed)
	errParamLen      = fmt.Errorf("%w: transport parameter length", ErrMalformed)
	errParamDup      = fmt.Errorf("%w: duplicate transport parameter", ErrMalformed)
	errParamValue    = fmt.Errorf("%w: transport parameter value", ErrMalformed)
	errPadding       = fmt.Errorf("%w: non-zero padding", ErrMalformed)
	errReasonLen     = fmt.Errorf("%w: close reason length", ErrMalformed)
	errTrailing      = fmt.Errorf("%w: trailing bytes", ErrMalformed)
	errRepairShape   = fmt.Errorf("%w: repair block shape", ErrMalformed)
	errConnID        = fmt.Errorf("%w: zero connection id", ErrMalformed)
)
