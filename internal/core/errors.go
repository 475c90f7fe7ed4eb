package core

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on. The transport package re-exports them.
var (
	ErrClosed           = errors.New("spillway: closed")
	ErrFrameTooLarge    = errors.New("spillway: frame too large")
	ErrFrameDropped     = errors.New("spillway: frame dropped")
	ErrInvalidConfig    = errors.New("spillway: invalid config")
	ErrUnknownStream    = errors.New("spillway: unknown stream")
	ErrTooManyStreams   = errors.New("spillway: too many streams")
	ErrIdleTimeout      = errors.New("spillway: idle timeout")
	ErrHandshakeTimeout = errors.New("spillway: handshake timeout")
	ErrRejected         = errors.New("spillway: connection rejected")
	ErrTooManyConns     = errors.New("spillway: too many connections")
)

// Close codes (docs/PROTOCOL.md §7.1).
const (
	CodeNoError           uint16 = 0
	CodeIdleTimeout       uint16 = 1
	CodeProtocolViolation uint16 = 2
	CodeInternal          uint16 = 3
	// CodeApplication is the first code an application may use.
	CodeApplication uint16 = 0x100
)

// CloseError says why a connection closed when the peer closed it or it
// closed for a protocol reason. errors.Is(err, ErrClosed) holds for every
// CloseError.
type CloseError struct {
	Code   uint16
	Reason string
	Remote bool // the peer sent the close
}

func (e *CloseError) Error() string {
	who := "local"
	if e.Remote {
		who = "remote"
	}
	if e.Reason == "" {
		return fmt.Sprintf("spillway: closed by %s (code %d)", who, e.Code)
	}
	return fmt.Sprintf("spillway: closed by %s (code %d): %s", who, e.Code, e.Reason)
}

// Is makes errors.Is(err, ErrClosed) true.
func (e *CloseError) Is(target error) bool { return target == ErrClosed }

// RejectError says why a server refused a connection.
type RejectError struct {
	Reason uint8 // wire.Reject* reasons
}

var rejectNames = map[uint8]string{1: "version not supported", 2: "refused", 3: "unacceptable transport parameters", 4: "server error"}

func (e *RejectError) Error() string {
	if n, ok := rejectNames[e.Reason]; ok {
		return "spillway: connection rejected: " + n
	}
	return fmt.Sprintf("spillway: connection rejected (reason %d)", e.Reason)
}

// Unwrap makes errors.Is(err, ErrRejected) true.
func (e *RejectError) Unwrap() error { return ErrRejected }
