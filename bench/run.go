package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/spillway-rt/spillway/cc"
	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/core"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/netem/pcap"
	"github.com/spillway-rt/spillway/wire"
)

var (
	senderAddr   = netip.MustParseAddrPort("10.0.0.1:5000")
	receiverAddr = netip.MustParseAddrPort("10.0.0.2:7000")
)

// drainAfter is how long a run goes on after the last frame is offered, so
// every frame's fate is known (it completes or passes its deadline).
const drainAfter = time.Second

// frameRec is the ground truth about one frame the sender offered.
type frameRec struct {
	submit      clock.Time
	size        int
	key         bool
	completed   clock.Time    // clock.Never if it never completed
	playout     clock.Time    // when the receiver released it; clock.Never if never
	late        bool          // released after its playout time (completed too late)
	undecodable bool          // released referencing a frame never released (a decoder skips it)
	excess      time.Duration // the receiver's playout excess when it was released
	dropped     bool          // the sender dropped it
	avail       []uint64      // fragments available at the receiver by the deadline
	frags       int           // fragments, once one was sent
	// The recovery time (Result.RecoveryMS): when its originals would all
	// have arrived without loss (ground truth, as for rtxTooLate), and how
	// many were sent and arrived.
	expect               clock.Time
	origSent, origArrive int32
}

type streamRec struct {
	source  Source
	id      uint8
	frames  []frameRec
	highest int64 // highest frame id seen arriving, for unwrapping
}

// dirCount counts one direction's datagrams by packet type.
type dirCount struct {
	packets [8]int64
	bytes   [8]int64
}

func (d *dirCount) add(b []byte) {
	if len(b) == 0 {
		return
	}
	t := b[0] >> 3 & 7
	d.packets[t]++
	d.bytes[t] += int64(len(b))
}

func (d *dirCount) total() (packets, bytes int64) {
	for i := range d.packets {
		packets += d.packets[i]
		bytes += d.bytes[i]
	}
	return
}

// run is one scenario in progress: the simulator, the two hosts and the
// ground truth the metrics come from.
type run struct {
	sc      Scenario
	latency time.Duration
	// The receiver's playout bound and drain rate (the profile's), for the
	// offline baselines.
	maxPlayout time.Duration
	drainRate  float64
	sim        *netem.Simulator
	snd        *host
	rcv        *host
	streams    [wire.MaxStreams]*streamRec
	fwd        dirCount
	rev        dirCount

	scripted     *cc.Scripted       // the sender's estimator, for Target "scripted"
	neck         *netem.Bottleneck  // the shared bottleneck of a row with Flows
	revNeck      *netem.Bottleneck  // the reverse one, with a Reverse flow
	peers        []*peer            // flows 1.. of a row with Flows
	cross        []*netem.TCPSender // its TCP cross traffic
	acct         *flowAcct          // phases and flows
	appBound     *appBound          // Result.AppLimitedBoundMax's state, for rows that need it
	trace        io.Writer
	mediaStart   clock.Time
	mediaEnd     clock.Time
	started      bool
	payloadBytes int64
	mediaArrived int64
	rtxArrived   int64
	rtxLate      int64
	rtxTooLate   int64
	rtxDropped   int64 // retransmissions of frames the sender had dropped
	padPackets   int64 // probe padding sent (not in fwd)
	padBytes     int64
	padArrived   int64
	padPNs       map[uint32]bool // truncated packet numbers of padding on its way
	corrupt      int
	fecPerSec    []int64
	mediaPerSec  []int64
	held         []heldDeadline // by packet number & heldMask
	arrived      []uint32       // media and retransmission packet numbers arrived, +1, by packet number & heldMask
	driftEach    []float64      // the receiver's drift estimate at the end of each second of media
	allowStop    *float64       // the receiver's largest recovery allowance (ms) when loss stopped (LossStop)
	allowLoss    []float64      // the same at the end of each second of media while loss lasted (LossStop)
	allowAfter   *float64       // the same 10 s later
	err          error
}

// host is a simulator node: a core endpoint plus the application on it.
type host struct {
	r      *run
	ep     *core.Endpoint
	addr   netip.AddrPort
	sender bool
	conn   *core.Conn

	clk     netem.Clock // the endpoint's own clock (the receiver's may drift)
	gen     *Generator
	srcNext int // the next of Scenario.SourceSteps
	payload []byte
	audio   uint8
	video   uint8
}

func (h *host) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	if !h.sender {
		h.r.onArrival(now, b)
		h.r.sampleDrift(now)
	}
	h.ep.HandleDatagram(h.clk.Local(now), from, b)
	h.drain(now)
}

func (h *host) HandleTimeout(now clock.Time) {
	if h.sender {
		h.offer(now)
	}
	h.ep.HandleTimeout(h.clk.Local(now))
	h.drain(now)
}

// noteTarget records the sender's transport target after each call.
func (h *host) noteTarget(now clock.Time) {
	if h.sender && h.conn != nil {
		target := h.conn.TransportTarget()
		h.r.acct.noteTarget(0, now, target)
		if b := h.r.appBound; b != nil && h.r.started {
			b.check(h.r, now, target)
		}
	}
}

// appBound checks the cc issue's app-limited bound on flow 0 before the
// first source step (Result.AppLimitedBoundMax): its sender's bytes per
// 10 ms, and the largest ratio seen.
type appBound struct {
	gcc      *cc.GCC
	sent     []int64 // UDP payload bytes sent per 10 ms of the simulator's clock
	maxRatio float64
	checked  bool
}

const appBin = 10 * time.Millisecond

func (b *appBound) onSent(now clock.Time, n int) {
	k := int(now / clock.Time(appBin))
	for len(b.sent) <= k {
		b.sent = append(b.sent, 0)
	}
	b.sent[k] += int64(n)
}

// check compares the target with max(2 x the send rate over the last 500
// ms, the highest rate a probe measured within 10 s), from 500 ms after
// the media started until the first source step.
func (b *appBound) check(r *run, now clock.Time, target int64) {
	if b.gcc == nil || now < r.mediaStart.Add(500*time.Millisecond) || now >= r.acct.origin.Add(r.sc.SourceSteps[0].At) {
		return
	}
	k := int(now / clock.Time(appBin))
	var bytes int64
	for i := max(k-49, 0); i <= k && i < len(b.sent); i++ {
		bytes += b.sent[i]
	}
	bound := max(2*float64(bytes)*8/0.5, float64(b.gcc.Stats().ProbedRate))
	if bound <= 0 {
		return
	}
	b.maxRatio, b.checked = max(b.maxRatio, float64(target)/bound), true
}

func (h *host) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	var pads int64
	if h.sender && h.conn != nil {
		pads = h.conn.ProbePaddingSent()
	}
	n, to, ok := h.ep.PollTransmit(h.clk.Local(now), dst)
	if ok && h.sender && h.r.appBound != nil {
		h.r.appBound.onSent(now, n)
	}
	if ok {
		if h.sender && h.conn != nil && h.conn.ProbePaddingSent() > pads {
			// Probe padding: a copy of a recent packet, sent as a
			// retransmission; counted apart from retransmissions.
			h.r.onPadding(dst[:n])
		} else if h.sender {
			h.r.onSend(now, dst[:n])
		} else {
			h.r.rev.add(dst[:n])
		}
	}
	return n, to, ok
}

func (h *host) NextTimeout() clock.Time {
	t := h.clk.Global(h.ep.NextTimeout())
	if h.sender && h.r.started {
		if at := h.r.mediaStart.Add(h.gen.Peek()); at < h.r.mediaEnd {
			t = clock.Min(t, at)
		}
	}
	return t
}

// offer writes every frame whose capture time has come.
func (h *host) offer(now clock.Time) {
	r := h.r
	if !r.started {
		return
	}
	for {
		at := r.mediaStart.Add(h.gen.Peek())
		if at > now || at >= r.mediaEnd {
			return
		}
		r.applySourceSteps(h.gen, &h.srcNext, at)
		f := h.gen.Next()
		sid := h.video
		if f.Source == SourceAudio {
			sid = h.audio
		}
		st := r.streams[sid]
		id := int64(len(st.frames))
		payload := h.payload[:f.Size]
		fillPayload(payload, sid, id)
		st.frames = append(st.frames, frameRec{submit: at, size: f.Size, key: f.Key, completed: clock.Never, playout: clock.Never})
		r.payloadBytes += int64(f.Size)
		err := h.conn.WriteFrame(now, sid, payload, core.FrameInfo{Capture: at, Key: f.Key})
		if err != nil && !errors.Is(err, core.ErrFrameDropped) {
			r.fail(fmt.Errorf("write frame: %w", err))
			return
		}
	}
}

// fillPayload writes a pattern the receiver checks: stream and frame id,
// then bytes derived from them.
func fillPayload(b []byte, stream uint8, id int64) {
	var hdr [9]byte
	hdr[0] = stream
	binary.BigEndian.PutUint64(hdr[1:], uint64(id))
	n := copy(b, hdr[:])
	for i := n; i < len(b); i++ {
		b[i] = byte(int64(i) * (id + 7))
	}
}

func checkPayload(b []byte, stream uint8, id int64, size int) bool {
	if len(b) != size {
		return false
	}
	var hdr [9]byte
	hdr[0] = stream
	binary.BigEndian.PutUint64(hdr[1:], uint64(id))
	n := min(len(b), len(hdr))
	for i := 0; i < n; i++ {
		if b[i] != hdr[i] {
			return false
		}
	}
	for i := n; i < len(b); i++ {
		if b[i] != byte(int64(i)*(id+7)) {
			return false
		}
	}
	return true
}

func (h *host) drain(now clock.Time) {
	r := h.r
	defer h.noteTarget(now)
	for {
		ev, ok := h.ep.PollEvent()
		if !ok {
			return
		}
		if r.trace != nil && h.sender && r.started {
			r.traceEvent(now, ev)
		}
		switch ev.Type {
		case core.EventConnected:
			h.conn = ev.Conn
			if h.sender {
				h.openStreams(now)
			}
		case core.EventFrame:
			st := r.streams[ev.Stream]
			if st == nil || ev.Frame.ID >= int64(len(st.frames)) {
				r.corrupt++
				continue
			}
			fr := &st.frames[ev.Frame.ID]
			fr.completed = h.clk.Global(ev.Frame.Completed) // the receiver's clock, read back
			fr.playout, fr.late, fr.undecodable = now, ev.Frame.PlayedLate, ev.Frame.Undecodable
			if ps, ok := h.conn.PlayoutStats(h.clk.Local(now), ev.Stream); ok {
				fr.excess = ps.Excess
			}
			if !checkPayload(ev.Data, ev.Stream, ev.Frame.ID, fr.size) {
				r.corrupt++
			}
			r.acct.noteGood(0, now, len(ev.Data))
		case core.EventKeyFrameRequest:
			if h.sender && ev.Stream == h.video && r.sc.Traffic.Video.FPS > 0 {
				h.gen.RequestKey()
			}
		case core.EventTargetRate:
			if h.sender && ev.Stream == h.video && r.sc.Traffic.Video.FPS > 0 && r.sc.Target != TargetNominal && !r.sc.IgnoreTarget {
				h.gen.SetVideoBitrate(ev.Bitrate)
			}
			if h.sender && ev.Stream == h.video {
				r.acct.noteEncoder(0, now, ev.Bitrate)
			}
		case core.EventPathDelay:
			if h.sender {
				r.acct.notePathDelay(0, now, ev.Over)
			}
		case core.EventFrameDropped:
			if st := r.streams[ev.Stream]; st != nil && ev.Frame.ID < int64(len(st.frames)) {
				st.frames[ev.Frame.ID].dropped = true
			}
		case core.EventClosed:
			if ev.Err != nil && now < r.mediaEnd {
				r.fail(fmt.Errorf("connection closed early: %w", ev.Err))
			}
		}
	}
}

func (h *host) openStreams(now clock.Time) {
	r := h.r
	t := r.sc.Traffic
	open := func(src Source, cfg core.StreamConfig) (uint8, bool) {
		id, err := h.conn.OpenStream(now, cfg)
		if err != nil {
			r.fail(fmt.Errorf("open stream: %w", err))
			return 0, false
		}
		r.streams[id] = &streamRec{source: src, id: id, highest: -1}
		return id, true
	}
	if t.Audio.FPS > 0 {
		if id, ok := open(SourceAudio, r.trackConfig(SourceAudio)); ok {
			h.audio = id
		}
	}
	if t.Video.FPS > 0 {
		if id, ok := open(SourceVideo, r.trackConfig(SourceVideo)); ok {
			h.video = id
		}
	}
	r.started = true
	r.mediaStart = now
	r.mediaEnd = now.Add(r.sc.Media)
	secs := int(math.Ceil(r.sc.Media.Seconds()))
	r.fecPerSec = make([]int64, secs)
	r.mediaPerSec = make([]int64, secs)
	r.held = make([]heldDeadline, heldMask+1)
	r.arrived = make([]uint32, heldMask+1)

	// The schedule counts from the media's start, or in a row with Flows
	// from the run's (the row clock: Result.Phases).
	base := now
	if len(r.sc.Flows) > 0 {
		base = 0
	}
	r.acct.origin = base
	if r.sc.LossStop > 0 {
		r.sim.Schedule(now.Add(r.sc.LossStop), func(clock.Time) {
			for _, l := range []*netem.Link{r.sim.Link(senderAddr, receiverAddr), r.sim.Link(receiverAddr, senderAddr)} {
				_ = l.SetConfig(lossless(l.Config()))
			}
		})
	}
	for _, st := range r.sc.Schedule {
		if r.scripted != nil && st.Forward != nil {
			r.scripted.Steps = append(r.scripted.Steps, cc.ScriptStep{At: base.Add(st.At), Rate: st.Forward.Rate})
		}
		fwd, rev := st.Forward, st.Reverse
		// A stall's HoldUntil counts from the media's start, like At; a
		// step once loss has stopped keeps it stopped (the step's config
		// is the whole link's, the loss of the scenario's included).
		stopped := r.sc.LossStop > 0 && st.At >= r.sc.LossStop
		for _, l := range []**netem.LinkConfig{&fwd, &rev} {
			if *l != nil && ((*l).HoldUntil > 0 || stopped) {
				c := **l
				if c.HoldUntil > 0 {
					c.HoldUntil += time.Duration(base)
				}
				if stopped {
					c = lossless(c)
				}
				*l = &c
			}
		}
		r.sim.Schedule(base.Add(st.At), func(clock.Time) {
			// Validate checked the configs: SetConfig cannot fail.
			if fwd != nil && r.neck != nil {
				_ = r.neck.SetConfig(*fwd)
			} else if fwd != nil {
				_ = r.sim.Link(senderAddr, receiverAddr).SetConfig(*fwd)
			}
			if rev != nil && r.revNeck != nil {
				_ = r.revNeck.SetConfig(*rev)
			} else if rev != nil {
				_ = r.sim.Link(receiverAddr, senderAddr).SetConfig(*rev)
			}
		})
	}
}

// lossless is cfg with its loss turned off (Scenario.LossStop).
func lossless(cfg netem.LinkConfig) netem.LinkConfig {
	cfg.Loss = 0
	cfg.GE, cfg.FourState = netem.GilbertElliott{}, netem.FourState{}
	return cfg
}

// trackConfig is the stream a sender of the row opens for a source: audio
// at its most (high priority), video at the most its source ever offers.
func (r *run) trackConfig(src Source) core.StreamConfig {
	if a := r.sc.Traffic.Audio; src == SourceAudio {
		return core.StreamConfig{Kind: core.KindAudio, Priority: core.PriorityHigh, Bitrate: int64(a.FPS * float64(a.MaxSize) * 8)}
	}
	return core.StreamConfig{Kind: core.KindVideo, Priority: core.PriorityMedium, Bitrate: r.videoBitrate(),
		MinBitrate: r.sc.Traffic.Video.MinBitrate}
}

func (r *run) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// deadline is the ground-truth deadline of a frame.
func (r *run) deadline(fr *frameRec) clock.Time { return fr.submit.Add(r.latency) }

// lookup finds the frame a data header names, unwrapping its 12-bit id
// against the highest id seen arriving; advance moves that reference.
func (r *run) lookup(h *wire.DataHeader, advance bool) *frameRec {
	st := r.streams[h.Stream]
	if st == nil {
		return nil
	}
	id := int64(h.FrameID)
	if st.highest >= 0 {
		id = wire.DecodeFrameID(st.highest+1, h.FrameID)
	}
	if id < 0 || id >= int64(len(st.frames)) {
		return nil
	}
	if advance && id > st.highest {
		st.highest = id
	}
	return &st.frames[id]
}

// heldDeadline is the deadline the sender held a media packet to.
type heldDeadline struct {
	pn uint32 // low 24 bits, as on the wire
	at clock.Time
}

// heldMask sizes the ring of held deadlines: 65536 packets, far more than
// are ever retransmitted after their first send.
const heldMask = 1<<16 - 1

// onSend accounts a datagram the sender sends.
func (r *run) onSend(now clock.Time, b []byte) {
	r.fwd.add(b)
	if !r.started {
		return
	}
	sec := int(now.Sub(r.mediaStart) / time.Second)
	inMedia := sec >= 0 && sec < len(r.mediaPerSec)
	switch wire.Type(b[0] >> 3 & 7) {
	case wire.TypeData:
		if inMedia {
			r.mediaPerSec[sec] += int64(len(b))
		}
		var h wire.DataHeader
		if _, err := h.Parse(b); err == nil {
			if fr := r.lookup(&h, false); fr != nil {
				fr.frags = int(h.FragCount)
				// The deadline the sender holds this packet to: capture +
				// max(Latency, the playout offset the receiver last fed
				// back), fixed when it is first sent (DESIGN §9).
				held := r.latency
				if c := r.snd.conn; c != nil {
					held = max(held, c.PeerPlayoutDelay())
				}
				r.held[h.PacketNumber&heldMask] = heldDeadline{pn: h.PacketNumber, at: fr.submit.Add(held)}
				fr.expect = clock.Max(fr.expect, r.truthArrival(now, len(b)))
				fr.origSent++
			}
		}
	case wire.TypeRepair:
		if inMedia {
			r.fecPerSec[sec] += int64(len(b))
		}
	case wire.TypeRetransmit:
		var h wire.DataHeader
		if _, err := h.Parse(b); err != nil {
			return
		}
		fr := r.lookup(&h, false)
		if fr == nil {
			return
		}
		arrive := r.truthArrival(now, len(b))
		deadline := r.deadline(fr)
		if e := r.held[h.Original&heldMask]; e.pn == h.Original {
			deadline = e.at
		}
		if arrive > deadline {
			r.rtxTooLate++
		}
		if fr.dropped {
			r.rtxDropped++
		}
	}
}

// truthArrival is when a datagram of n bytes the sender sends now
// arrives, given the bottleneck queue ahead of it (ground truth; jitter
// after the bottleneck left out).
func (r *run) truthArrival(now clock.Time, n int) clock.Time {
	link := r.sim.Link(senderAddr, receiverAddr)
	cfg, queued := link.Config(), link.Stats().QueueBytes
	arrive := now.Add(cfg.Delay)
	if r.neck != nil {
		// The access delay, then the shared queue.
		cfg, queued = r.neck.Config(), r.neck.Stats().QueueBytes
		arrive = arrive.Add(cfg.Delay)
	}
	if cfg.Rate > 0 {
		bits := (queued + int64(n+cfg.Overhead)) * 8
		arrive = arrive.Add(time.Duration(float64(bits) / float64(cfg.Rate) * float64(time.Second)))
	}
	return arrive
}

// onPadding accounts a probe padding packet the sender sends.
func (r *run) onPadding(b []byte) {
	r.padPackets++
	r.padBytes += int64(len(b))
	var h wire.DataHeader
	if _, err := h.Parse(b); err == nil {
		r.padPNs[h.PacketNumber] = true
	}
}

// onArrival accounts a datagram reaching the receiver.
func (r *run) onArrival(now clock.Time, b []byte) {
	if len(b) == 0 {
		return
	}
	t := wire.Type(b[0] >> 3 & 7)
	if t != wire.TypeData && t != wire.TypeRetransmit {
		return
	}
	var h wire.DataHeader
	if _, err := h.Parse(b); err != nil {
		return
	}
	// A copy the link made (netem's Duplicate) is one packet arrived, not
	// two: the lost count is sent less arrived.
	i := h.PacketNumber & heldMask
	if r.arrived[i] == h.PacketNumber+1 {
		return
	}
	r.arrived[i] = h.PacketNumber + 1
	if t == wire.TypeRetransmit && r.padPNs[h.PacketNumber] {
		delete(r.padPNs, h.PacketNumber)
		r.padArrived++
		return
	}
	fr := r.lookup(&h, true)
	if fr == nil {
		return
	}
	if t == wire.TypeRetransmit {
		r.rtxArrived++
		if now > r.deadline(fr) {
			r.rtxLate++
		}
	} else {
		r.mediaArrived++
		fr.origArrive++
	}
	if now <= r.deadline(fr) {
		if fr.avail == nil {
			fr.avail = make([]uint64, (int(h.FragCount)+63)/64)
		}
		fr.avail[h.FragIndex/64] |= 1 << (h.FragIndex % 64)
	}
}

// seededReader is the cores' io.Reader of randomness in the simulator:
// deterministic for a seed.
type seededReader struct{ r *rand.ChaCha8 }

func (s seededReader) Read(p []byte) (int, error) { return s.r.Read(p) }

func newSeeded(seed uint64, salt byte) seededReader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	key[31] = salt
	return seededReader{rand.NewChaCha8(key)}
}

// RunOptions are RunWith's extras; the zero value runs exactly as Run does.
type RunOptions struct {
	// PcapDir, if set, is an existing directory where the run writes what
	// each direction's link delivers: <scenario>-fwd.pcap (sender to
	// receiver) and <scenario>-rev.pcap, with virtual times (pcap.VirtualEpoch
	// + simulator time; see netem/pcap).
	PcapDir string
	// Trace, if set, receives a line per sender event (frames dropped,
	// key-frame requests, target rates), per frame that completed late or
	// never, per frame the player released late or undecodable, and per
	// video freeze, in virtual seconds from the start of media: for
	// finding out why a row looks as it does.
	Trace io.Writer
	// Context, if set, stops the run when it ends (RunWith then returns its
	// error): the simulator checks it every simulated second.
	Context context.Context
}

// RunWith runs one scenario as Run does, with options: Run(sc, seed) and
// RunWith(sc, seed, RunOptions{}) give the same row (a test checks it).
func RunWith(sc Scenario, seed uint64, opts RunOptions) (Result, error) {
	res, _, err := runWith(sc, seed, opts)
	if err != nil || !sc.Reference {
		return res, err
	}
	ref := sc
	ref.Target, ref.Reference = TargetGCC02, false
	rr, _, err := runWith(ref, seed, RunOptions{Context: opts.Context})
	if err != nil {
		return Result{}, fmt.Errorf("reference run: %w", err)
	}
	res.Reference = &ReferenceResult{Controller: "gcc-02", OnTimeRatio: rr.OnTimeRatio, GoodputBPS: rr.GoodputBPS,
		LatencyMS: rr.LatencyMS, Phases: rr.Phases, Flows: rr.Flows}
	return res, nil
}

// handshakeWait is how long a run waits for its handshake.
const handshakeWait = 30 * time.Second

// runWith is RunWith; it also returns the finished run, whose simulator the
// tests read.
func runWith(sc Scenario, seed uint64, opts RunOptions) (res Result, r *run, err error) {
	if err := sc.Validate(); err != nil {
		return Result{}, nil, err
	}
	wallStart := time.Now()
	r = &run{sc: sc, latency: sc.Profile.Latency(), sim: netem.New(seed), trace: opts.Trace, padPNs: map[uint32]bool{}}
	nflows := max(1, len(sc.Flows))
	r.acct = newFlowAcct(nflows)
	if opts.PcapDir != "" {
		closeCaptures, err := r.capture(opts.PcapDir)
		if err != nil {
			return Result{}, nil, err
		}
		defer func() {
			if cerr := closeCaptures(); cerr != nil && err == nil {
				res, err = Result{}, cerr
			}
		}()
	}
	// The handshake may take as long as the run waits for it: at 10 % loss
	// in bursts of 3, seed 12 of arq-rtt100-ge10b3 lost twelve Hellos in a
	// row, past the default 10 s.
	cfg := core.Config{Latency: r.latency, MaxFECOverhead: sc.MaxFECOverhead, HandshakeTimeout: handshakeWait}
	// The profiles' playout bounds and drain rates (DESIGN §4).
	switch sc.Profile {
	case ProfileLive:
		cfg.MinPlayoutDelay, cfg.MaxPlayoutDelay, cfg.DrainRate, cfg.PlayoutQuantile = time.Second, 3*time.Second, 0.03, 0.999
		cfg.PlayoutWindow = core.LivePlayoutWindow
		cfg.PlayoutStallTogether, cfg.RecoveryResidual = true, core.LiveRecoveryResidual
	default:
		cfg.MinPlayoutDelay, cfg.MaxPlayoutDelay, cfg.DrainRate = 0, 800*time.Millisecond, 0.10
	}
	r.maxPlayout, r.drainRate = cfg.MaxPlayoutDelay, cfg.DrainRate
	if sc.PlayoutQuantile > 0 {
		cfg.PlayoutQuantile = sc.PlayoutQuantile
	}
	sndCfg, rcvCfg := cfg, cfg
	switch sc.Target {
	case TargetScripted:
		r.scripted = &cc.Scripted{Lag: sc.TargetLag, Share: sc.TargetShare,
			Steps: []cc.ScriptStep{{At: 0, Rate: sc.Forward.Rate}}}
		sndCfg.Estimator = func() cc.Estimator { return r.scripted }
	case TargetGCC:
		sndCfg.Estimator = func() cc.Estimator { return cc.NewGCC(cc.GCCConfig{StartRate: sc.StartTarget}) }
	case TargetGCC02:
		sndCfg.Estimator = func() cc.Estimator { return cc.NewGCC02(cc.GCCConfig{StartRate: sc.StartTarget}) }
	case TargetFixed:
		sndCfg.Estimator = func() cc.Estimator { return &cc.Fixed{Rate: sc.StartTarget} }
	}
	sndCfg.Rand = newSeeded(seed, 1)
	rcvCfg.Rand = newSeeded(seed, 2)
	rcvCfg.Accept = true
	flow0Cfg := sndCfg
	if sc.Target == TargetGCC && len(sc.SourceSteps) > 0 {
		r.appBound = &appBound{}
		newEst := sndCfg.Estimator
		flow0Cfg.Estimator = func() cc.Estimator {
			e := newEst()
			if g, ok := e.(*cc.GCC); ok {
				r.appBound.gcc = g
			}
			return e
		}
	}
	sndEP, err := core.NewEndpoint(flow0Cfg)
	if err != nil {
		return Result{}, nil, err
	}
	rcvEP, err := core.NewEndpoint(rcvCfg)
	if err != nil {
		return Result{}, nil, err
	}
	maxFrame := r.maxFrameSize()
	r.snd = &host{r: r, ep: sndEP, addr: senderAddr, sender: true, gen: NewGenerator(sc.Traffic, seed), payload: make([]byte, maxFrame)}
	r.rcv = &host{r: r, ep: rcvEP, addr: receiverAddr, clk: sc.ReceiverClock}
	if err := r.sim.AddNode(receiverAddr, r.rcv); err != nil {
		return Result{}, nil, err
	}
	if err := r.sim.AddNode(senderAddr, r.snd); err != nil {
		return Result{}, nil, err
	}
	var start time.Duration
	if len(sc.Flows) > 0 {
		start = sc.Flows[0].Start
		if err := r.setupFlows(seed, sndCfg, rcvCfg); err != nil {
			return Result{}, nil, fmt.Errorf("bench %s: %w", sc.Name, err)
		}
		// Flow 0 connects at its start (cross traffic may start first);
		// the simulator polls every node after a scheduled call.
		r.sim.Schedule(clock.Time(start), func(now clock.Time) {
			if _, err := sndEP.Connect(now, receiverAddr); err != nil {
				r.fail(err)
			}
		})
	} else {
		if err := r.sim.Connect(senderAddr, receiverAddr, sc.Forward, sc.Reverse); err != nil {
			return Result{}, nil, err
		}
		if err := r.sim.SetQueueHook(senderAddr, receiverAddr, func(ev netem.QueueEvent) { r.acct.queueEvent(r, ev, false) }); err != nil {
			return Result{}, nil, err
		}
		if _, err := sndEP.Connect(r.sim.Now(), receiverAddr); err != nil {
			return Result{}, nil, err
		}
	}
	// The handshake takes a round trip or a few (lost Hellos); media starts
	// when it completes and runs for sc.Media.
	limit := clock.Time(start + sc.Media + 30*time.Second)
	for r.err == nil {
		if !r.started {
			if r.sim.Now() > clock.Time(start+handshakeWait) {
				return Result{}, nil, fmt.Errorf("bench %s: handshake did not complete in %v", sc.Name, handshakeWait)
			}
			r.sim.RunUntil(r.sim.Now().Add(10 * time.Millisecond))
			continue
		}
		end := r.mediaEnd.Add(r.latency + drainAfter)
		if end > limit {
			end = limit
		}
		for t := r.sim.Now(); t < end && r.err == nil; {
			t = min(t.Add(time.Second), end)
			r.sim.RunUntil(t)
			if opts.Context != nil && opts.Context.Err() != nil {
				return Result{}, nil, fmt.Errorf("bench %s: %w", sc.Name, opts.Context.Err())
			}
		}
		break
	}
	if r.err != nil {
		return Result{}, nil, fmt.Errorf("bench %s: %w", sc.Name, r.err)
	}
	res = r.result(seed)
	if r.trace != nil {
		r.traceFrames()
	}
	res.SimS = r.sim.Now().Sub(0).Seconds()
	res.WallS = time.Since(wallStart).Seconds()
	if res.WallS > 0 {
		res.SimSpeed = math.Round(res.SimS/res.WallS*10) / 10
	}
	return res, r, nil
}

// capture points the simulator's capture hooks at two pcap files in dir and
// returns the function that closes them (reporting the first write error).
func (r *run) capture(dir string) (closeAll func() error, err error) {
	fwd, err := pcap.Create(filepath.Join(dir, r.sc.Name+"-fwd.pcap"))
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", r.sc.Name, err)
	}
	rev, err := pcap.Create(filepath.Join(dir, r.sc.Name+"-rev.pcap"))
	if err != nil {
		_ = fwd.Close()
		return nil, fmt.Errorf("bench %s: %w", r.sc.Name, err)
	}
	r.sim.SetCapture(senderAddr, receiverAddr, fwd.Virtual())
	r.sim.SetCapture(receiverAddr, senderAddr, rev.Virtual())
	return func() error {
		if err := errors.Join(fwd.Close(), rev.Close()); err != nil {
			return fmt.Errorf("bench %s: captures: %w", r.sc.Name, err)
		}
		return nil
	}, nil
}

func (r *run) traceAt(t clock.Time) string {
	return fmt.Sprintf("t=%.3f", t.Sub(r.mediaStart).Seconds())
}

func (r *run) traceEvent(now clock.Time, ev core.Event) {
	src := "?"
	if st := r.streams[ev.Stream]; st != nil {
		src = st.source.String()
	}
	switch ev.Type {
	case core.EventFrameDropped:
		fmt.Fprintf(r.trace, "%s dropped %s frame=%d key=%v size=%d reason=%s late_ms=%.1f (%s)\n", r.traceAt(now), src,
			ev.Frame.ID, ev.Frame.Key, ev.Frame.Size, ev.Frame.DropReason, ms(ev.Frame.Late), ev.Frame.Reason)
	case core.EventKeyFrameRequest:
		fmt.Fprintf(r.trace, "%s keyframe-request %s local=%v\n", r.traceAt(now), src, ev.Local)
	case core.EventTargetRate:
		st := ev.Conn.Stats()
		fmt.Fprintf(r.trace, "%s target %s bps=%d transport_bps=%d pacer_ms=%.1f\n", r.traceAt(now), src, ev.Bitrate,
			st.AvailableOutgoingBitrate, ms(st.PacerQueueDelay))
	}
}

// traceFrames lists the frames that completed after their deadline or
// never (those the sender dropped are in the event lines).
func (r *run) traceFrames() {
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for i := range st.frames {
			fr := &st.frames[i]
			switch {
			case fr.dropped:
			case fr.completed == clock.Never:
				fmt.Fprintf(r.trace, "%s never %s frame=%d key=%v size=%d\n", r.traceAt(fr.submit), st.source, i, fr.key, fr.size)
			case fr.completed > r.deadline(fr):
				fmt.Fprintf(r.trace, "%s late %s frame=%d key=%v size=%d latency_ms=%.1f\n", r.traceAt(fr.submit), st.source, i, fr.key, fr.size,
					ms(fr.completed.Sub(fr.submit)))
			}
			// The player's view: released after its playout time, or
			// released undecodable.
			if fr.playout != clock.Never && (fr.late || fr.undecodable) {
				fmt.Fprintf(r.trace, "%s played %s frame=%d key=%v late=%v undecodable=%v completed_ms=%.1f playout_ms=%.1f\n",
					r.traceAt(fr.submit), st.source, i, fr.key, fr.late, fr.undecodable,
					ms(fr.completed.Sub(fr.submit)), ms(fr.playout.Sub(fr.submit)))
			}
		}
	}
}

// driftPPM is the receiver's clock-drift estimate now.
func (r *run) driftPPM() float64 {
	if r.rcv == nil || r.rcv.conn == nil {
		return 0
	}
	return r.rcv.conn.Stats().PlayoutDriftPPM
}

// sampleDrift records the receiver's drift estimate at the end of each
// second of media, read as datagrams arrive (a scheduled event would wake
// the endpoints at extra times and change the run).
func (r *run) sampleDrift(now clock.Time) {
	if !r.started {
		return
	}
	for len(r.driftEach) < len(r.mediaPerSec) && now >= r.mediaStart.Add(time.Duration(len(r.driftEach)+1)*time.Second) {
		r.driftEach = append(r.driftEach, r.driftPPM())
	}
	if stop := r.sc.LossStop; stop > 0 {
		for len(r.allowLoss) < min(len(r.driftEach), int(stop/time.Second)) {
			v := r.allowance(now)
			if v == nil {
				break
			}
			r.allowLoss = append(r.allowLoss, *v)
		}
		if r.allowStop == nil && now >= r.mediaStart.Add(stop) {
			r.allowStop = r.allowance(now)
		}
		if r.allowAfter == nil && now >= r.mediaStart.Add(stop+allowanceAfter) {
			r.allowAfter = r.allowance(now)
		}
	}
}

// recoveryTimes returns the percentiles of the recovery time
// (Result.RecoveryMS), nil without a frame to measure.
func (r *run) recoveryTimes() *Percentiles {
	var d []float64
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		for i := range st.frames {
			fr := &st.frames[i]
			if fr.origSent == 0 || fr.origArrive >= fr.origSent || fr.completed == clock.Never || fr.dropped {
				continue
			}
			d = append(d, max(0, ms(fr.completed.Sub(fr.expect))))
		}
	}
	if len(d) == 0 {
		return nil
	}
	p := percentiles(d)
	return &p
}

// allowanceAfter is how long after loss stops the recovery allowance is
// read again (the jitterbuffer issue: <= 20 ms within 10 s).
const allowanceAfter = 10 * time.Second

// allowance is the largest recovery allowance (ms) of the receiver's
// playout buffers now.
func (r *run) allowance(now clock.Time) *float64 {
	h := r.rcv
	if h == nil || h.conn == nil {
		return nil
	}
	var worst time.Duration
	for _, st := range r.streams {
		if st == nil {
			continue
		}
		if ps, ok := h.conn.PlayoutStats(h.clk.Local(now), st.id); ok {
			worst = max(worst, ps.Allowance)
		}
	}
	v := round4(ms(worst))
	return &v
}
