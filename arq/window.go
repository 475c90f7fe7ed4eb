package arq

// WindowSize is how many packet numbers below the largest received the
// receive window remembers. Older packets are treated as duplicates: they
// cannot be told apart from replays, and at any sensible rate they are far
// past every deadline (4096 packets is 1 s at 50 Mbit/s of 1200-byte
// packets).
const WindowSize = 4096

// ReceiveWindow tracks which packet numbers arrived: it rejects duplicates
// (and replays) and counts packets lost as RFC 3550 §6.4.1 does (expected
// minus received, so a late arrival repays its loss). Its zero value is
// ready to use, like wireguard-go's replay filter. Memory: WindowSize bits.
type ReceiveWindow struct {
	bits     [WindowSize / 64]uint64
	largest  int64 // -1 before any packet: see Largest
	started  bool
	first    int64
	received int64
	dups     int64
	gaps     int64
}

// Largest returns the largest packet number received, or -1 before any.
func (w *ReceiveWindow) Largest() int64 {
	if !w.started {
		return -1
	}
	return w.largest
}

// Record notes packet number pn. It returns false for a duplicate or a
// packet too old to tell (below the window), which the caller drops.
func (w *ReceiveWindow) Record(pn int64) bool {
	if pn < 0 {
		return false
	}
	if !w.started {
		w.started = true
		w.first = pn
		w.largest = pn
		w.set(pn)
		w.received++
		return true
	}
	switch {
	case pn > w.largest:
		gap := pn - w.largest
		if gap > 1 {
			w.gaps++
		}
		if gap >= WindowSize {
			clear(w.bits[:])
		} else {
			for p := w.largest + 1; p < pn; p++ {
				w.unset(p)
			}
		}
		w.largest = pn
	case w.largest-pn >= WindowSize:
		w.dups++
		return false
	case w.isSet(pn):
		w.dups++
		return false
	}
	if pn < w.first {
		w.first = pn
	}
	w.set(pn)
	w.received++
	return true
}

// Contains reports whether packet number pn was recorded and is still
// within the window.
func (w *ReceiveWindow) Contains(pn int64) bool {
	return w.started && pn >= 0 && pn <= w.largest && w.largest-pn < WindowSize && w.isSet(pn)
}

func (w *ReceiveWindow) set(pn int64)   { w.bits[(pn/64)%(WindowSize/64)] |= 1 << (pn % 64) }
func (w *ReceiveWindow) unset(pn int64) { w.bits[(pn/64)%(WindowSize/64)] &^= 1 << (pn % 64) }
func (w *ReceiveWindow) isSet(pn int64) bool {
	return w.bits[(pn/64)%(WindowSize/64)]&(1<<(pn%64)) != 0
}

// Received returns how many distinct packets were recorded.
func (w *ReceiveWindow) Received() int64 { return w.received }

// Gaps returns how many runs of missing packet numbers Record has seen
// open (a packet past the largest by more than one). Lost / Gaps is the
// mean loss burst, as long as few gaps are filled late.
func (w *ReceiveWindow) Gaps() int64 { return w.gaps }

// Duplicates returns how many packets Record refused.
func (w *ReceiveWindow) Duplicates() int64 { return w.dups }

// Expected returns how many packet numbers lie from the first received to
// the largest (RFC 3550's "expected").
func (w *ReceiveWindow) Expected() int64 {
	if !w.started {
		return 0
	}
	return w.largest - w.first + 1
}

// Lost returns Expected minus Received (never negative).
func (w *ReceiveWindow) Lost() int64 {
	if l := w.Expected() - w.received; l > 0 {
		return l
	}
	return 0
}
