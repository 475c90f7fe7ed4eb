package transport

import "github.com/spillway-rt/spillway/internal/core"

// Errors callers branch on (with errors.Is). A context's expiry is reported
// as the context's own error.
var (
	// ErrClosed: the session, track, listener or transport is closed. Errors
	// describing why a session closed (a *CloseError, ErrIdleTimeout) also
	// match ErrClosed.
	ErrClosed = core.ErrClosed
	// ErrFrameTooLarge: a frame above the session's maximum frame size.
	ErrFrameTooLarge = core.ErrFrameTooLarge
	// ErrFrameDropped: the frame cannot arrive before its deadline (or the
	// send buffer is full), so it was dropped instead of sent late.
	ErrFrameDropped = core.ErrFrameDropped
	// ErrInvalidConfig: a Config or TrackConfig field is out of range; the
	// message names it.
	ErrInvalidConfig = core.ErrInvalidConfig
	// ErrIdleTimeout: the peer went silent for the idle timeout.
	ErrIdleTimeout = core.ErrIdleTimeout
	// ErrHandshakeTimeout: Dial's handshake got no answer in time.
	ErrHandshakeTimeout = core.ErrHandshakeTimeout
	// ErrRejected: the server refused the session (a *RejectError says why).
	ErrRejected = core.ErrRejected
	// ErrTooManyTracks: a session sends at most 16 tracks at once; a
	// closed track's id stays taken until its last frame's deadline has
	// passed (and an RTT more) and the peer has acknowledged its drop
	// notices (at most 2 s).
	ErrTooManyTracks = core.ErrTooManyStreams
)

// CloseError says why a session closed when the peer closed it.
type CloseError = core.CloseError

// RejectError says why a server refused a session.
type RejectError = core.RejectError
