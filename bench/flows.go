package bench

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/internal/core"
	"github.com/spillway-rt/spillway/netem"
)

// FlowSpec is one media flow of a row with several (Scenario.Flows). Its
// times count from the start of the run.
type FlowSpec struct {
	// Delay is the flow's one-way access delay, each way, before the
	// shared bottleneck (RFC 8867 5.5's 10-150 ms).
	Delay time.Duration `json:"delay"`
	// Start is when the flow connects; its media starts when the handshake
	// completes. Flow 0's media then lasts Scenario.Media.
	Start time.Duration `json:"start,omitempty"`
	// Stop ends the flow's media (0: with flow 0's).
	Stop time.Duration `json:"stop,omitempty"`
	// PauseAt and ResumeAt: the application offers nothing in between (RFC
	// 8867 5.8); it asks for a key frame when it resumes.
	PauseAt  time.Duration `json:"pause_at,omitempty"`
	ResumeAt time.Duration `json:"resume_at,omitempty"`
	// Reverse sends the flow's media the other way (RFC 8867 5.3: one
	// flow each way): from flow 0's receiver side, through a second shared
	// bottleneck configured by Scenario.Reverse, which also carries the
	// forward flows' feedback (and Schedule may change it); its own
	// feedback crosses the forward bottleneck. Phases measure the forward
	// bottleneck and its flows only. Not for flow 0.
	Reverse bool `json:"reverse,omitempty"`
}

// CrossSpec is a TCP flow through a row's shared bottleneck (netem's
// TCPSender): bulk, or files of FileSize-FileSizeMax bytes separated by
// exponential idle times of mean IdleMean.
type CrossSpec struct {
	Variant     netem.TCPVariant `json:"variant"`
	Delay       time.Duration    `json:"delay"` // one-way access delay, each way
	Start       time.Duration    `json:"start,omitempty"`
	Stop        time.Duration    `json:"stop,omitempty"` // 0: with the run
	FileSize    int              `json:"file_size,omitempty"`
	FileSizeMax int              `json:"file_size_max,omitempty"`
	IdleMean    time.Duration    `json:"idle_mean,omitempty"`
	// StartIdle makes an on/off flow begin with an idle time (RFC 8867
	// 5.7: 2 of its 10 flows start on).
	StartIdle bool `json:"start_idle,omitempty"`
}

// convergeSkip is how much of each constant phase the phases array leaves
// out by default: SCENARIOS.md's "converged" window.
const convergeSkip = 5 * time.Second

// validateFlows checks the multi-flow fields.
func (s Scenario) validateFlows() error {
	if len(s.Flows) == 0 {
		if len(s.Cross) > 0 {
			return fmt.Errorf("scenario %s: cross traffic needs Flows (a shared bottleneck)", s.Name)
		}
		return nil
	}
	if len(s.Flows) > maxFlows {
		return fmt.Errorf("scenario %s: %d flows, at most %d", s.Name, len(s.Flows), maxFlows)
	}
	if len(s.Cross) > maxFlows {
		return fmt.Errorf("scenario %s: %d cross flows, at most %d", s.Name, len(s.Cross), maxFlows)
	}
	if s.LossStop > 0 || s.Target == TargetScripted {
		return fmt.Errorf("scenario %s: loss stop and a scripted target are single-flow features", s.Name)
	}
	if s.Flows[0].Reverse {
		return fmt.Errorf("scenario %s: flow 0 goes forward", s.Name)
	}
	if s.ReceiverClock != (netem.Clock{}) && len(s.Flows) > 1 {
		return fmt.Errorf("scenario %s: a skewed receiver clock with %d flows: only flow 0's receiver would have it", s.Name, len(s.Flows))
	}
	end := s.Flows[0].Start + s.Media
	for i, f := range s.Flows {
		switch {
		case f.Delay < 0 || f.Start < 0 || f.Stop < 0:
			return fmt.Errorf("scenario %s: flow %d: negative time", s.Name, i)
		case f.Stop != 0 && (f.Stop <= f.Start || f.Stop > end):
			return fmt.Errorf("scenario %s: flow %d: stop %v outside (%v, %v]", s.Name, i, f.Stop, f.Start, end)
		case f.Start >= end:
			return fmt.Errorf("scenario %s: flow %d starts after the run", s.Name, i)
		case (f.PauseAt != 0 || f.ResumeAt != 0) && !(f.Start < f.PauseAt && f.PauseAt < f.ResumeAt):
			return fmt.Errorf("scenario %s: flow %d: pause %v-%v not after its start", s.Name, i, f.PauseAt, f.ResumeAt)
		case f.ResumeAt != 0 && f.ResumeAt >= cmp.Or(f.Stop, end):
			return fmt.Errorf("scenario %s: flow %d: resume %v not before the flow ends at %v", s.Name, i, f.ResumeAt, cmp.Or(f.Stop, end))
		}
	}
	for i, c := range s.Cross {
		switch {
		case c.Delay < 0 || c.Start < 0 || c.Stop < 0 || (c.Stop != 0 && c.Stop <= c.Start):
			return fmt.Errorf("scenario %s: cross flow %d: bad times", s.Name, i)
		case c.FileSize < 0 || (c.FileSize == 0 && (c.FileSizeMax != 0 || c.IdleMean != 0 || c.StartIdle)):
			return fmt.Errorf("scenario %s: cross flow %d: file fields without a file size", s.Name, i)
		}
	}
	for i, st := range s.Schedule {
		if st.Reverse != nil && !s.hasReverseFlows() {
			return fmt.Errorf("scenario %s: schedule[%d]: rows with Flows change the bottlenecks only (the reverse one needs a Reverse flow)", s.Name, i)
		}
	}
	return nil
}

// hasReverseFlows says whether a flow goes the other way: the row then has
// a reverse bottleneck (FlowSpec.Reverse).
func (s Scenario) hasReverseFlows() bool {
	for _, f := range s.Flows {
		if f.Reverse {
			return true
		}
	}
	return false
}

// forward says whether media flow i goes forward, through the bottleneck
// the phases measure.
func (s Scenario) forward(i int) bool { return len(s.Flows) == 0 || !s.Flows[i].Reverse }

// maxFlows bounds a row's media and cross flows (addresses 10.0.1-4.N).
const maxFlows = 64

// flowAddrs returns extra media flow i's sender and receiver addresses.
func flowAddrs(i int) (snd, rcv netip.AddrPort) {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}), 5000),
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 2, byte(i)}), 7000)
}

func crossAddrs(i int) (snd, rcv netip.AddrPort) {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 3, byte(i)}), 80),
		netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 4, byte(i)}), 80)
}

// ---- accounting ----

// qrec is one datagram leaving (or dropped by) the queue the row's phases
// are measured at.
type qrec struct {
	at     clock.Time
	queued float32 // ms
	wire   int32
	flow   int16 // media flow index; -1 for cross traffic and feedback
	drop   bool
	rev    bool // at the reverse bottleneck (FlowSpec.Reverse)
}

// targetStep is a flow's transport target from at on.
type targetStep struct {
	at  clock.Time
	bps int64
}

// flowAcct is what the row's phases and flows arrays come from.
type flowAcct struct {
	q       []qrec
	targets [][]targetStep // per media flow, the steps of its transport target
	encoder [][]targetStep // per media flow, its video encoder target (TargetRate)
	goodput []int64        // per media flow, payload bytes of frames completed
	// goodBins: per media flow, payload bytes of frames played in each
	// second of the row clock.
	goodBins [][]int64
	// overAt: per media flow, when its sender first said the path's delay
	// alone exceeds Latency (core.EventPathDelay); clock.Never if it did not.
	overAt []clock.Time
	origin clock.Time // the row clock's zero (see Result.Phases)
}

func newFlowAcct(n int) *flowAcct {
	a := &flowAcct{targets: make([][]targetStep, n), encoder: make([][]targetStep, n), goodput: make([]int64, n),
		goodBins: make([][]int64, n), overAt: make([]clock.Time, n)}
	for i := range a.overAt {
		a.overAt[i] = clock.Never
	}
	return a
}

// noteGood counts a played frame's payload for flow i.
func (a *flowAcct) noteGood(i int, now clock.Time, bytes int) {
	a.goodput[i] += int64(bytes)
	if now < a.origin {
		return
	}
	sec := int(now.Sub(a.origin) / time.Second)
	for len(a.goodBins[i]) <= sec {
		a.goodBins[i] = append(a.goodBins[i], 0)
	}
	a.goodBins[i][sec] += int64(bytes)
}

// notePathDelay notes flow i's sender saying the path's delay exceeds its
// budget.
func (a *flowAcct) notePathDelay(i int, now clock.Time, over bool) {
	if over && a.overAt[i] == clock.Never {
		a.overAt[i] = now
	}
}

// goodMin1s is the least goodput (bit/s) of flow i over the whole seconds
// of the row clock within its spans from `from` on; nil if none.
func (a *flowAcct) goodMin1s(i int, spans []span, from clock.Time) *float64 {
	var least *float64
	for _, x := range spans {
		lo := max(x.from, from)
		first := (lo.Sub(a.origin) + time.Second - 1) / time.Second
		last := x.to.Sub(a.origin) / time.Second // exclusive
		for sec := int(first); sec < int(last); sec++ {
			var b int64
			if sec < len(a.goodBins[i]) {
				b = a.goodBins[i][sec]
			}
			v := float64(b * 8)
			if least == nil || v < *least {
				least = &v
			}
		}
	}
	return least
}

func (a *flowAcct) queueEvent(r *run, ev netem.QueueEvent, rev bool) {
	a.q = append(a.q, qrec{at: ev.At, queued: float32(ms(ev.Queued)), wire: int32(ev.Wire), flow: int16(r.flowOf(ev.From)), drop: ev.Dropped, rev: rev})
}

func (a *flowAcct) noteTarget(i int, now clock.Time, bps int64) {
	a.targets[i] = addStep(a.targets[i], now, bps)
}

func (a *flowAcct) noteEncoder(i int, now clock.Time, bps int64) {
	a.encoder[i] = addStep(a.encoder[i], now, bps)
}

func addStep(ts []targetStep, now clock.Time, bps int64) []targetStep {
	if n := len(ts); n > 0 && ts[n-1].bps == bps {
		return ts
	}
	if n := len(ts); n > 0 && ts[n-1].at == now {
		ts[n-1].bps = bps
		return ts
	}
	return append(ts, targetStep{now, bps})
}

// flowOf maps a sender address to its media flow, or -1.
func (r *run) flowOf(a netip.AddrPort) int {
	if a == senderAddr {
		return 0
	}
	for i, p := range r.peers {
		if p.snd.addr == a {
			return i + 1
		}
	}
	return -1
}

// ---- the extra media flows ----

// peer is an extra media flow of a multi-flow row: a sender and a receiver
// running the same cores and source as flow 0, with lighter accounting
// (its target and goodput; the queue hook sees its packets).
type peer struct {
	r        *run
	idx      int
	spec     FlowSpec
	snd, rcv *peerNode
}

// peerNode is one end of a peer.
type peerNode struct {
	p      *peer
	sender bool
	ep     *core.Endpoint
	conn   *core.Conn
	addr   netip.AddrPort
	to     netip.AddrPort

	connected  bool
	gen        *Generator
	payload    []byte
	audio      uint8
	video      uint8
	started    bool
	mediaStart clock.Time
	mediaEnd   clock.Time
	resumed    bool
	srcNext    int // the next of Scenario.SourceSteps
}

// applySourceSteps gives gen the R_max of the source steps due by a frame
// captured at at; next is gen's place in them.
func (r *run) applySourceSteps(gen *Generator, next *int, at clock.Time) {
	steps := r.sc.SourceSteps
	for *next < len(steps) && at >= r.acct.origin.Add(steps[*next].At) {
		gen.SetMaxBitrate(steps[*next].Bitrate)
		*next++
	}
}

// videoBitrate is the most the row's video sources ever offer (R_max, or
// the highest of its source steps): the video stream's configured bitrate,
// which bounds its encoder target; the application, not the stream,
// offers less while its R_max is lower.
func (r *run) videoBitrate() int64 {
	b := r.sc.Traffic.Video.Bitrate
	for _, st := range r.sc.SourceSteps {
		b = max(b, st.Bitrate)
	}
	return b
}

// maxFrameSize bounds the frames of the row's sources.
func (r *run) maxFrameSize() int {
	t := r.sc.Traffic
	for _, st := range r.sc.SourceSteps {
		t.Video.Bitrate = max(t.Video.Bitrate, st.Bitrate)
	}
	return t.maxFrameSize()
}

// offerAt is what one flow's source can offer at t (row clock): R_max
// plus audio.
func (r *run) offerAt(t clock.Time) float64 {
	tr := r.sc.Traffic
	for _, st := range r.sc.SourceSteps {
		if r.acct.origin.Add(st.At) <= t {
			tr.Video.Bitrate = st.Bitrate
		}
	}
	return tr.offerBPS()
}

func (n *peerNode) HandleDatagram(now clock.Time, from netip.AddrPort, b []byte) {
	n.ep.HandleDatagram(now, from, b)
	n.after(now)
}

func (n *peerNode) HandleTimeout(now clock.Time) {
	if n.sender && !n.connected && now >= clock.Time(n.p.spec.Start) {
		n.connected = true
		if _, err := n.ep.Connect(now, n.to); err != nil {
			n.p.r.fail(fmt.Errorf("flow %d: connect: %w", n.p.idx, err))
		}
	}
	if n.sender {
		n.offer(now)
	}
	n.ep.HandleTimeout(now)
	n.after(now)
}

func (n *peerNode) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	return n.ep.PollTransmit(now, dst)
}

func (n *peerNode) NextTimeout() clock.Time {
	t := n.ep.NextTimeout()
	if n.sender && !n.connected {
		return clock.Min(t, clock.Time(n.p.spec.Start))
	}
	if n.sender && n.started {
		if at := n.mediaStart.Add(n.gen.Peek()); at < n.mediaEnd {
			t = clock.Min(t, at)
		}
	}
	return t
}

func (n *peerNode) after(now clock.Time) {
	r := n.p.r
	for {
		ev, ok := n.ep.PollEvent()
		if !ok {
			break
		}
		switch ev.Type {
		case core.EventConnected:
			n.conn = ev.Conn
			if n.sender {
				n.open(now)
			}
		case core.EventFrame:
			r.acct.noteGood(n.p.idx, now, len(ev.Data))
		case core.EventPathDelay:
			if n.sender {
				r.acct.notePathDelay(n.p.idx, now, ev.Over)
			}
		case core.EventKeyFrameRequest:
			if n.sender && ev.Stream == n.video && r.sc.Traffic.Video.FPS > 0 {
				n.gen.RequestKey()
			}
		case core.EventTargetRate:
			if n.sender && ev.Stream == n.video && r.sc.Traffic.Video.FPS > 0 && r.sc.Target != TargetNominal && !r.sc.IgnoreTarget {
				n.gen.SetVideoBitrate(ev.Bitrate)
				r.acct.noteEncoder(n.p.idx, now, ev.Bitrate)
			}
		case core.EventClosed:
			if ev.Err != nil && now < n.mediaEnd {
				r.fail(fmt.Errorf("flow %d: connection closed early: %w", n.p.idx, ev.Err))
			}
		}
	}
	if n.sender && n.conn != nil {
		r.acct.noteTarget(n.p.idx, now, n.conn.TransportTarget())
	}
}

func (n *peerNode) open(now clock.Time) {
	r := n.p.r
	t := r.sc.Traffic
	var err error
	if t.Audio.FPS > 0 {
		n.audio, err = n.conn.OpenStream(now, r.trackConfig(SourceAudio))
	}
	if err == nil && t.Video.FPS > 0 {
		n.video, err = n.conn.OpenStream(now, r.trackConfig(SourceVideo))
	}
	if err != nil {
		r.fail(fmt.Errorf("flow %d: open stream: %w", n.p.idx, err))
		return
	}
	n.started = true
	n.mediaStart = now
	n.mediaEnd = r.flowEnd(n.p.spec)
}

// offer writes the frames whose capture time has come, but for those
// captured while the flow is paused.
func (n *peerNode) offer(now clock.Time) {
	if !n.started {
		return
	}
	r := n.p.r
	spec := n.p.spec
	for {
		at := n.mediaStart.Add(n.gen.Peek())
		if at > now || at >= n.mediaEnd {
			return
		}
		if spec.ResumeAt > 0 && at >= clock.Time(spec.ResumeAt) && !n.resumed {
			n.resumed = true
			n.gen.RequestKey()
		}
		r.applySourceSteps(n.gen, &n.srcNext, at)
		f := n.gen.Next()
		if spec.ResumeAt > 0 && at >= clock.Time(spec.PauseAt) && at < clock.Time(spec.ResumeAt) {
			continue
		}
		sid := n.video
		if f.Source == SourceAudio {
			sid = n.audio
		}
		err := n.conn.WriteFrame(now, sid, n.payload[:f.Size], core.FrameInfo{Capture: at, Key: f.Key})
		if err != nil && !errors.Is(err, core.ErrFrameDropped) {
			r.fail(fmt.Errorf("flow %d: write frame: %w", n.p.idx, err))
			return
		}
	}
}

// flowEnd is when a flow's media ends: its Stop, else flow 0's end.
func (r *run) flowEnd(f FlowSpec) clock.Time {
	if f.Stop > 0 {
		return clock.Time(f.Stop)
	}
	return clock.Time(r.sc.Flows[0].Start + r.sc.Media)
}

// setupFlows builds a multi-flow row's network: a shared bottleneck
// configured by the scenario's Forward link, each flow's access links
// (its Delay each way; the reverse direction is the scenario's Reverse
// link with that delay), the extra media flows and the TCP cross traffic.
func (r *run) setupFlows(seed uint64, sndCfg, rcvCfg core.Config) error {
	sc := r.sc
	neck, err := r.sim.AddBottleneck(sc.Forward)
	if err != nil {
		return err
	}
	r.neck = neck
	neck.SetQueueHook(func(ev netem.QueueEvent) { r.acct.queueEvent(r, ev, false) })
	if sc.hasReverseFlows() {
		if r.revNeck, err = r.sim.AddBottleneck(sc.Reverse); err != nil {
			return err
		}
		r.revNeck.SetQueueHook(func(ev netem.QueueEvent) { r.acct.queueEvent(r, ev, true) })
	}
	// connect links a flow's sender a and receiver b, d each way: a to b
	// through the forward bottleneck, b to a through the reverse one (or
	// with the Reverse link's characteristics, without one); the other way
	// round for a flow that goes in reverse.
	connect := func(a, b netip.AddrPort, d time.Duration, reverse bool) error {
		rev := sc.Reverse
		rev.Delay = d
		if r.revNeck != nil {
			rev = netem.LinkConfig{Delay: d}
		}
		if err := r.sim.Connect(a, b, netem.LinkConfig{Delay: d}, rev); err != nil {
			return err
		}
		ab, ba := r.sim.Link(a, b), r.sim.Link(b, a)
		if reverse {
			ab, ba = ba, ab
		}
		if err := ab.SetVia(neck); err != nil {
			return err
		}
		if r.revNeck != nil {
			return ba.SetVia(r.revNeck)
		}
		return nil
	}
	if err := connect(senderAddr, receiverAddr, sc.Flows[0].Delay, false); err != nil {
		return err
	}
	maxFrame := r.maxFrameSize()
	for i := 1; i < len(sc.Flows); i++ {
		p := &peer{r: r, idx: i, spec: sc.Flows[i]}
		sa, ra := flowAddrs(i)
		scfg, rcfg := sndCfg, rcvCfg
		scfg.Rand = newSeeded(seed, byte(2*i+1))
		rcfg.Rand = newSeeded(seed, byte(2*i+2))
		sep, err := core.NewEndpoint(scfg)
		if err != nil {
			return err
		}
		rep, err := core.NewEndpoint(rcfg)
		if err != nil {
			return err
		}
		p.snd = &peerNode{p: p, sender: true, ep: sep, addr: sa, to: ra,
			gen: NewGenerator(sc.Traffic, seed+uint64(i)*0x9e3779b9), payload: make([]byte, maxFrame)}
		p.rcv = &peerNode{p: p, ep: rep, addr: ra}
		if err := r.sim.AddNode(ra, p.rcv); err != nil {
			return err
		}
		if err := r.sim.AddNode(sa, p.snd); err != nil {
			return err
		}
		// A reverse flow's sender sits with flow 0's receiver: its link
		// to its receiver is the reverse bottleneck's.
		if err := connect(sa, ra, p.spec.Delay, p.spec.Reverse); err != nil {
			return err
		}
		r.peers = append(r.peers, p)
	}
	rng := rand.New(rand.NewPCG(seed, 0x63726f7373))
	for i, c := range sc.Cross {
		sa, ra := crossAddrs(i)
		start := c.Start
		if c.StartIdle {
			start += time.Duration(rng.ExpFloat64() * float64(c.IdleMean))
		}
		tc := netem.TCPConfig{Peer: ra, Flow: uint32(i), Variant: c.Variant, Start: clock.Time(start),
			FileSize: c.FileSize, FileSizeMax: c.FileSizeMax, IdleMean: c.IdleMean, Seed: seed ^ uint64(i)<<32}
		if c.Stop > 0 {
			tc.Stop = clock.Time(c.Stop)
		}
		snd, rcv, err := netem.NewTCPFlow(tc)
		if err != nil {
			return fmt.Errorf("cross flow %d: %w", i, err)
		}
		if err := r.sim.AddNode(ra, rcv); err != nil {
			return err
		}
		if err := r.sim.AddNode(sa, snd); err != nil {
			return err
		}
		if err := connect(sa, ra, c.Delay, false); err != nil {
			return err
		}
		r.cross = append(r.cross, snd)
	}
	return nil
}

// ---- results ----

// PhaseResult is one constant phase of a row (Result.Phases): capacity
// and the set of active flows unchanged, measured over its converged part.
type PhaseResult struct {
	StartS       float64       `json:"start_s"` // the converged window, row clock
	EndS         float64       `json:"end_s"`
	CapacityBPS  int64         `json:"capacity_bps"`
	Utilization  float64       `json:"utilization"`
	QueueDelayMS QueuePercents `json:"queue_delay_ms"`
	LossRatio    float64       `json:"loss_ratio"`
	Jain5sMin    float64       `json:"jain_5s_min"`
	// Jain1sMin: as Jain5sMin on 1 s windows (SCENARIOS.md's three:
	// 1, 5 and 20 s).
	Jain1sMin float64 `json:"jain_1s_min"`
	// ReactionS (a phase of lower capacity than the one before): from the
	// phase's start until the media flows' transport targets add up to at
	// most its capacity; ReachS (the first phase, one of higher capacity,
	// or one whose sources can offer more: Scenario.SourceSteps): until
	// they add up to 0.9 x min(capacity, what the sources can offer). Null
	// if it never happened within the phase.
	ReactionS *float64 `json:"reaction_s,omitempty"`
	ReachS    *float64 `json:"reach_s,omitempty"`
	// ConvergeS (every phase with media flows after the first such):
	// SCENARIOS.md's convergence, from the phase's start (as ReachS; the
	// converged window, StartS, begins later) until the first time the
	// active media flows' summed transport target, as a mean over the
	// second before (on a 100 ms grid, so at least 1 s), stays within 15 %
	// of min(capacity, what the sources can offer) for 5 s; null if it
	// never did within the phase. The reference is the whole capacity:
	// with TCP sharing the bottleneck (RFC 8867 5.6, 5.7) the media are
	// not meant to reach it, and where the sources offer less than the
	// capacity an application-limited target may rightly stand above
	// what they offer (up to twice what they send, the cc issue's bound);
	// such phases read null.
	ConvergeS *float64 `json:"converge_s,omitempty"`
	// Jain20sMin: as Jain5sMin on 20 s windows (phases of 20 s or more).
	Jain20sMin *float64 `json:"jain_20s_min,omitempty"`
	// TargetBPS and EncoderBPS: the sum over the active media flows of
	// their transport targets and of their video encoder targets
	// (TargetRate), over the converged window.
	TargetBPS  RateStats `json:"target_bps"`
	EncoderBPS RateStats `json:"encoder_target_bps"`
	// TargetMinMax20s: the least min/max of that summed transport target
	// over the 20 s windows within the converged window (phases of 20 s or
	// more): how steady it holds over any 20 s (jitter-30's figure).
	TargetMinMax20s *float64 `json:"target_min_max_20s,omitempty"`
	// GoodputBPS: the active media flows' payload of the frames played in
	// the whole seconds of the row clock within the converged window, per
	// second (0 without a whole second).
	GoodputBPS float64 `json:"goodput_bps"`
	// FlowThroughputBPS (phases of two or more forward media flows): one
	// entry per flow of the row, in the order of the flows array, each
	// active flow's wire bytes leaving the bottleneck over the converged
	// window (as Utilization counts them) and null for a flow not active
	// in the phase; ThroughputMaxMin the largest over the smallest of the
	// active ones (RFC 8867 5.5's max/min over its measured window, which
	// the flows array, over each flow's whole life, cannot give), null if
	// one of them carried nothing at all (its 0 shows in
	// FlowThroughputBPS).
	FlowThroughputBPS []*float64 `json:"flow_throughput_bps,omitempty"`
	ThroughputMaxMin  *float64   `json:"throughput_max_min,omitempty"`
}

// goodputIn is PhaseResult.GoodputBPS: flows act's played payload over
// the whole seconds of the row clock within [from, to), bit/s.
func (a *flowAcct) goodputIn(act []int, from, to clock.Time) float64 {
	first := int((from.Sub(a.origin) + time.Second - 1) / time.Second)
	last := int(to.Sub(a.origin) / time.Second) // exclusive
	if last <= first {
		return 0
	}
	var bytes int64
	for _, i := range act {
		for sec := first; sec < last && sec < len(a.goodBins[i]); sec++ {
			bytes += a.goodBins[i][sec]
		}
	}
	return math.Round(float64(bytes) * 8 / float64(last-first))
}

// RateStats are a rate's time-weighted mean, least and largest value over
// a window, bit/s.
type RateStats struct {
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// stepTimes returns from and the steps of the series of flows act within
// (from, to), in order: where their sum may change.
func stepTimes(series [][]targetStep, act []int, from, to clock.Time) []clock.Time {
	ts := []clock.Time{from}
	for _, i := range act {
		for _, s := range series[i] {
			if s.at > from && s.at < to {
				ts = append(ts, s.at)
			}
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// stepSum is the sum of the step series of flows act at t.
func stepSum(series [][]targetStep, act []int, t clock.Time) float64 {
	var v float64
	for _, i := range act {
		v += float64(targetAt(series[i], t))
	}
	return v
}

// stepStats is RateStats of the sum of the step series of flows act over
// [from, to).
func stepStats(series [][]targetStep, act []int, from, to clock.Time) RateStats {
	ts := stepTimes(series, act, from, to)
	rs := RateStats{Min: math.Inf(1)}
	var integral float64
	for k, t := range ts {
		next := to
		if k+1 < len(ts) {
			next = ts[k+1]
		}
		v := stepSum(series, act, t)
		integral += v * next.Sub(t).Seconds()
		rs.Min, rs.Max = math.Min(rs.Min, v), math.Max(rs.Max, v)
	}
	rs.Mean = math.Round(integral / to.Sub(from).Seconds())
	return rs
}

// stepMinMax is the least min/max of the sum of the step series of flows
// act over the windows of width win within [from, to) (1 with no window
// or no rate). The sum is constant between its steps, so the windows
// starting at from or at a step, and those ending at a step, are all
// there are to compare. A window holds its end: the one ending at a step
// stands for those ending just after it.
func stepMinMax(series [][]targetStep, act []int, from, to clock.Time, win time.Duration) float64 {
	if to.Sub(from) < win {
		return 1
	}
	ts := stepTimes(series, act, from, to)
	vs := make([]float64, len(ts)) // the sum from ts[k] to the next step
	for k, t := range ts {
		vs[k] = stepSum(series, act, t)
	}
	last := to.Add(-win) // the latest start
	starts := []clock.Time{from, last}
	for _, t := range ts {
		if t <= last {
			starts = append(starts, t)
		}
		if e := t.Add(-win); e >= from && e <= last {
			starts = append(starts, e)
		}
	}
	least := 1.0
	for _, st := range starts {
		end := st.Add(win)
		lo, hi := math.Inf(1), 0.0
		for k, t := range ts {
			next := to
			if k+1 < len(ts) {
				next = ts[k+1]
			}
			if next <= st || t > end {
				continue
			}
			lo, hi = min(lo, vs[k]), max(hi, vs[k])
		}
		if hi > 0 {
			least = min(least, lo/hi)
		}
	}
	return least
}

// QueuePercents are queueing delays at the bottleneck in ms.
type QueuePercents struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

// FlowResult is one media flow of a row (Result.Flows): means over its
// active time (row clock), targets being the transport's.
type FlowResult struct {
	StartS        float64 `json:"start_s"`
	EndS          float64 `json:"end_s"`
	OneWayMS      float64 `json:"one_way_ms"`
	TargetBPS     float64 `json:"target_bps"`
	GoodputBPS    float64 `json:"goodput_bps"`
	ThroughputBPS float64 `json:"throughput_bps"` // wire bytes leaving the bottleneck
	// JoinS: from the flow's last start (or resume) until its transport
	// target reached 0.8 x min(capacity / active flows, what its source
	// can offer), as things stood then; null if it never did.
	JoinS *float64 `json:"join_s,omitempty"`
	// GoodputMin1sBPS: the least goodput over the whole seconds of the row
	// clock the flow was active in, from Scenario.MeasureFrom on.
	GoodputMin1sBPS *float64 `json:"goodput_1s_min_bps,omitempty"`
	// PathOverBudgetS: when (row clock) the flow's sender first said the
	// path's delay alone exceeds Latency (core.EventPathDelay); null if it
	// never did.
	PathOverBudgetS *float64 `json:"path_over_budget_s,omitempty"`
	// GoodputMin1sAfterPathOverBPS: as GoodputMin1sBPS, over the whole
	// seconds from PathOverBudgetS on (the cc issue's 5.6 bound: "from
	// then on ... goodput >= 150 kbit/s in every 1 s window"); null if the
	// sender never said so, or no whole second of the flow followed.
	GoodputMin1sAfterPathOverBPS *float64 `json:"goodput_1s_min_after_path_over_bps,omitempty"`
	// Reverse: the flow went the other way (FlowSpec.Reverse); its
	// throughput is at the reverse bottleneck.
	Reverse bool `json:"reverse,omitempty"`
	// TargetCuts1s: in each second of the row clock (rows with Flows), how
	// many times the flow's transport target fell by cutShare or more at
	// once (a controller's cut: GCC's are 15 %).
	TargetCuts1s []int `json:"target_cuts_1s,omitempty"`
}

// cutShare: a transport target falling by this share or more at once is
// a cut (FlowResult.TargetCuts1s).
const cutShare = 0.05

// cuts1s is FlowResult.TargetCuts1s of flow i up to end.
func (a *flowAcct) cuts1s(i int, end clock.Time) []int {
	out := make([]int, int(math.Ceil(end.Sub(a.origin).Seconds())))
	ts := a.targets[i]
	for k := 1; k < len(ts); k++ {
		if float64(ts[k].bps) > (1-cutShare)*float64(ts[k-1].bps) || ts[k].at < a.origin {
			continue
		}
		if sec := int(ts[k].at.Sub(a.origin) / time.Second); sec < len(out) {
			out[sec]++
		}
	}
	return out
}

// span is a time interval on the row clock.
type span struct{ from, to clock.Time }

// flowSpans returns each media flow's active spans, row clock.
func (r *run) flowSpans() [][]span {
	sc := r.sc
	if len(sc.Flows) == 0 {
		return [][]span{{{r.mediaStart, r.mediaEnd}}}
	}
	out := make([][]span, len(sc.Flows))
	for i, f := range sc.Flows {
		from, to := clock.Time(f.Start), r.flowEnd(f)
		if i == 0 {
			from = r.mediaStart
		}
		if f.ResumeAt > 0 {
			out[i] = []span{{from, clock.Time(f.PauseAt)}, {clock.Time(f.ResumeAt), to}}
		} else {
			out[i] = []span{{from, to}}
		}
	}
	return out
}

// offerBPS is what one flow's source can offer at most: R_max plus audio.
func (t Traffic) offerBPS() float64 {
	v := float64(t.Video.Bitrate)
	if t.Video.FPS == 0 {
		v = 0
	}
	return v + t.Audio.FPS*float64(t.Audio.MinSize+t.Audio.MaxSize)/2*8
}

// phasesAndFlows computes Result.Phases and Result.Flows.
func (r *run) phasesAndFlows() ([]PhaseResult, []FlowResult) {
	a := r.acct
	sc := r.sc
	spans := r.flowSpans()
	end := r.mediaEnd
	for _, s := range spans {
		end = max(end, s[len(s)-1].to)
	}
	// Capacity over time (row clock): the schedule's forward rates.
	type capStep struct {
		at   clock.Time
		rate int64
	}
	caps := []capStep{{a.origin, sc.Forward.Rate}}
	revCaps := []capStep{{a.origin, sc.Reverse.Rate}}
	for _, st := range sc.Schedule {
		if st.Forward != nil && st.Forward.Rate != caps[len(caps)-1].rate {
			caps = append(caps, capStep{a.origin.Add(st.At), st.Forward.Rate})
		}
		if st.Reverse != nil && st.Reverse.Rate != revCaps[len(revCaps)-1].rate {
			revCaps = append(revCaps, capStep{a.origin.Add(st.At), st.Reverse.Rate})
		}
	}
	// Phase boundaries: capacity changes and every forward flow's (and
	// cross flow's) start and stop.
	bounds := []clock.Time{}
	for _, c := range caps {
		bounds = append(bounds, c.at)
	}
	for i, s := range spans {
		if !sc.forward(i) {
			continue
		}
		for _, x := range s {
			bounds = append(bounds, x.from, x.to)
		}
	}
	for _, st := range sc.SourceSteps {
		bounds = append(bounds, a.origin.Add(st.At))
	}
	for _, c := range sc.Cross {
		bounds = append(bounds, clock.Time(c.Start))
		if c.Stop > 0 {
			bounds = append(bounds, clock.Time(c.Stop))
		}
	}
	bounds = append(bounds, end)
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	// running says whether flow i is active at t; active, whether it is a
	// forward one (the phases' flows).
	running := func(i int, t clock.Time) bool {
		for _, x := range spans[i] {
			if t >= x.from && t < x.to {
				return true
			}
		}
		return false
	}
	active := func(i int, t clock.Time) bool { return sc.forward(i) && running(i, t) }
	capOf := func(caps []capStep, t clock.Time) int64 {
		c := caps[0].rate
		for _, s := range caps {
			if s.at <= t {
				c = s.rate
			}
		}
		return c
	}
	capAt := func(t clock.Time) int64 { return capOf(caps, t) }
	skip := sc.ConvergeSkip
	if skip == 0 {
		skip = convergeSkip
	}
	var phases []PhaseResult
	prevCap, prevOffer := int64(-1), 0.0
	for k := 0; k+1 < len(bounds); k++ {
		from, to := bounds[k], bounds[k+1]
		if from < a.origin || to > end {
			continue
		}
		var act []int
		for i := range spans {
			if active(i, from) {
				act = append(act, i)
			}
		}
		capacity := capAt(from)
		if len(act) == 0 || capacity <= 0 {
			continue // no media flow, or no capacity limit: nothing to measure
		}
		ph := PhaseResult{CapacityBPS: capacity}
		sum := func(t clock.Time) (s float64) {
			for _, i := range act {
				s += float64(targetAt(a.targets[i], t))
			}
			return s
		}
		offer := r.offerAt(from)
		limit := math.Min(float64(capacity), offer*float64(len(act)))
		switch {
		case prevCap >= 0 && capacity < prevCap:
			ph.ReactionS = firstWhen(a, act, from, to, func(t clock.Time) bool { return sum(t) <= float64(capacity) })
		case prevCap < 0 || capacity > prevCap || (capacity == prevCap && offer > prevOffer):
			ph.ReachS = firstWhen(a, act, from, to, func(t clock.Time) bool { return sum(t) >= 0.9*limit })
		}
		if prevCap >= 0 {
			ph.ConvergeS = convergeTime(a, act, from, to, limit)
		}
		prevCap, prevOffer = capacity, offer
		wFrom := max(from.Add(skip), a.origin.Add(sc.MeasureFrom))
		if wFrom >= to {
			continue
		}
		ph.StartS, ph.EndS = round4(wFrom.Sub(a.origin).Seconds()), round4(to.Sub(a.origin).Seconds())
		var qd []float64
		var mediaBytes, drops, sent int64
		i0 := sortSearchQ(a.q, wFrom)
		for j := i0; j < len(a.q) && a.q[j].at < to; j++ {
			q := &a.q[j]
			if q.rev {
				continue
			}
			if q.flow >= 0 {
				sent++
				if q.drop {
					drops++
				}
			}
			if q.drop {
				continue
			}
			qd = append(qd, float64(q.queued))
			if q.flow >= 0 {
				mediaBytes += int64(q.wire)
			}
		}
		win := to.Sub(wFrom).Seconds()
		ph.Utilization = round4(float64(mediaBytes) * 8 / (limit * win))
		if len(qd) > 0 {
			slices.Sort(qd)
			pct := func(p float64) float64 {
				i := min(max(int(math.Ceil(p*float64(len(qd))))-1, 0), len(qd)-1)
				return round4(qd[i])
			}
			ph.QueueDelayMS = QueuePercents{P50: pct(0.5), P95: pct(0.95), Max: pct(1)}
		}
		if sent > 0 {
			ph.LossRatio = round4(float64(drops) / float64(sent))
		}
		ph.Jain5sMin = round4(r.jainMin(act, wFrom, to, 5*time.Second))
		ph.Jain1sMin = round4(r.jainMin(act, wFrom, to, time.Second))
		if to.Sub(wFrom) >= 20*time.Second {
			j := round4(r.jainMin(act, wFrom, to, 20*time.Second))
			ph.Jain20sMin = &j
			mm := round4(stepMinMax(a.targets, act, wFrom, to, 20*time.Second))
			ph.TargetMinMax20s = &mm
		}
		ph.TargetBPS = stepStats(a.targets, act, wFrom, to)
		ph.EncoderBPS = stepStats(a.encoder, act, wFrom, to)
		ph.GoodputBPS = a.goodputIn(act, wFrom, to)
		ph.FlowThroughputBPS, ph.ThroughputMaxMin = flowThroughputs(a.q, act, len(spans), wFrom, to)
		phases = append(phases, ph)
	}

	flows := make([]FlowResult, len(spans))
	for i, s := range spans {
		var dur time.Duration
		for _, x := range s {
			dur += x.to.Sub(x.from)
		}
		fr := FlowResult{StartS: round4(s[0].from.Sub(a.origin).Seconds()), EndS: round4(s[len(s)-1].to.Sub(a.origin).Seconds())}
		if len(sc.Flows) > 0 {
			fr.OneWayMS = ms(sc.Flows[i].Delay)
		} else {
			fr.OneWayMS = ms(sc.Forward.Delay)
		}
		if dur > 0 {
			var tsum, bytes float64
			for _, x := range s {
				tsum += targetIntegral(a.targets[i], x.from, x.to)
				bytes += float64(queueBytes(a.q, i, x.from, x.to))
			}
			fr.TargetBPS = math.Round(tsum / dur.Seconds())
			fr.GoodputBPS = math.Round(float64(a.goodput[i]) * 8 / dur.Seconds())
			fr.ThroughputBPS = math.Round(bytes * 8 / dur.Seconds())
		}
		// The share to join at: of the bottleneck the flow crosses, among
		// the flows active then that cross it too.
		last := s[len(s)-1]
		nact := 0
		for k := range spans {
			if sc.forward(k) == sc.forward(i) && running(k, last.from) {
				nact++
			}
		}
		capacity := capAt(last.from)
		if !sc.forward(i) {
			fr.Reverse = true
			capacity = capOf(revCaps, last.from)
		}
		share := 0.8 * math.Min(float64(capacity)/float64(max(nact, 1)), r.offerAt(last.from))
		fr.JoinS = firstWhen(a, []int{i}, last.from, last.to, func(t clock.Time) bool { return float64(targetAt(a.targets[i], t)) >= share })
		fr.GoodputMin1sBPS = a.goodMin1s(i, s, a.origin.Add(sc.MeasureFrom))
		if at := a.overAt[i]; at != clock.Never {
			v := round4(at.Sub(a.origin).Seconds())
			fr.PathOverBudgetS = &v
			fr.GoodputMin1sAfterPathOverBPS = a.goodMin1s(i, s, at)
		}
		if len(sc.Flows) > 0 {
			fr.TargetCuts1s = a.cuts1s(i, end)
		}
		flows[i] = fr
	}
	return phases, flows
}

// targetAt is a step series' value at t (0 before its first step).
func targetAt(ts []targetStep, t clock.Time) int64 {
	i, _ := slices.BinarySearchFunc(ts, t, func(s targetStep, t clock.Time) int {
		if s.at <= t {
			return -1
		}
		return 1
	})
	if i == 0 {
		return 0
	}
	return ts[i-1].bps
}

// targetIntegral is the integral of a step series over [from, to), in bit.
func targetIntegral(ts []targetStep, from, to clock.Time) float64 {
	var sum float64
	cur, at := targetAt(ts, from), from
	for _, s := range ts {
		if s.at <= from {
			continue
		}
		if s.at >= to {
			break
		}
		sum += float64(cur) * s.at.Sub(at).Seconds()
		cur, at = s.bps, s.at
	}
	return sum + float64(cur)*to.Sub(at).Seconds()
}

// Convergence (PhaseResult.ConvergeS): the band around the reference, how
// long the target must stay in it, the mean's window and the grid.
const (
	convergeBand = 0.15
	convergeHold = 5 * time.Second
	convergeMean = time.Second
	convergeGrid = 100 * time.Millisecond
)

// convergeTime is PhaseResult.ConvergeS for flows act over the phase
// [from, to) with reference ref, bit/s.
func convergeTime(a *flowAcct, act []int, from, to clock.Time, ref float64) *float64 {
	if ref <= 0 {
		return nil
	}
	in := func(t clock.Time) bool {
		var bits float64
		for _, i := range act {
			bits += targetIntegral(a.targets[i], t.Add(-convergeMean), t)
		}
		return math.Abs(bits/convergeMean.Seconds()-ref) <= convergeBand*ref
	}
	var since clock.Time
	inBand := false
	for t := from.Add(convergeMean); t <= to; t = t.Add(convergeGrid) {
		switch {
		case !in(t):
			inBand = false
		case !inBand:
			since, inBand = t, true
		}
		if inBand && t.Sub(since) >= convergeHold {
			v := round4(since.Sub(from).Seconds())
			return &v
		}
	}
	return nil
}

// firstWhen returns, in seconds from from, the first time in [from, to)
// at which ok holds, checking at from and at each target step of the
// active flows; nil if never.
func firstWhen(a *flowAcct, act []int, from, to clock.Time, ok func(clock.Time) bool) *float64 {
	ts := []clock.Time{from}
	for _, i := range act {
		for _, s := range a.targets[i] {
			if s.at > from && s.at < to {
				ts = append(ts, s.at)
			}
		}
	}
	slices.Sort(ts)
	for _, t := range ts {
		if ok(t) {
			v := round4(t.Sub(from).Seconds())
			return &v
		}
	}
	return nil
}

func sortSearchQ(q []qrec, t clock.Time) int {
	i, _ := slices.BinarySearchFunc(q, t, func(x qrec, t clock.Time) int {
		if x.at < t {
			return -1
		}
		return 1
	})
	return i
}

// flowThroughputs is PhaseResult.FlowThroughputBPS and ThroughputMaxMin
// for the active (forward) flows act of a row of n flows over [from,
// to); nil, nil with fewer than two active.
func flowThroughputs(q []qrec, act []int, n int, from, to clock.Time) ([]*float64, *float64) {
	win := to.Sub(from).Seconds()
	if len(act) < 2 || win <= 0 {
		return nil, nil
	}
	out := make([]*float64, n)
	lo, hi := math.Inf(1), 0.0
	for _, i := range act {
		v := math.Round(float64(queueBytes(q, i, from, to)) * 8 / win)
		out[i] = &v
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo <= 0 {
		return out, nil
	}
	r := round4(hi / lo)
	return out, &r
}

// queueBytes is the wire bytes flow i had leave the queue in [from, to).
func queueBytes(q []qrec, i int, from, to clock.Time) int64 {
	var n int64
	for j := sortSearchQ(q, from); j < len(q) && q[j].at < to; j++ {
		if int(q[j].flow) == i && !q[j].drop {
			n += int64(q[j].wire)
		}
	}
	return n
}

// jainMin is the least Jain index of the active flows' bytes leaving the
// queue over consecutive windows of w in [from, to); 1 for one flow or no
// whole window.
func (r *run) jainMin(act []int, from, to clock.Time, w time.Duration) float64 {
	worst := 1.0
	if len(act) < 2 {
		return worst
	}
	x := make([]float64, len(act))
	for s := from; s.Add(w) <= to; s = s.Add(w) {
		var sum, sq float64
		for k, i := range act {
			x[k] = float64(queueBytes(r.acct.q, i, s, s.Add(w)))
			sum += x[k]
			sq += x[k] * x[k]
		}
		if sq > 0 {
			worst = math.Min(worst, sum*sum/(float64(len(act))*sq))
		}
	}
	return worst
}
