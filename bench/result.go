package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
)

// Percentiles are frame latencies in milliseconds; nil where the percentile
// falls on a frame that never completed (SCENARIOS.md: such frames rank as
// infinitely late).
type Percentiles struct {
	P50 *float64 `json:"p50"`
	P95 *float64 `json:"p95"`
	P99 *float64 `json:"p99"`
	Max *float64 `json:"max"`
}

// StreamResult is the per-stream part of a Result.
type StreamResult struct {
	FramesSent  int         `json:"frames_sent"`
	OnTimeRatio float64     `json:"on_time_ratio"`
	LatencyMS   Percentiles `json:"latency_ms"`
}

// Result is one row of the bench (DESIGN §9 names and defines the fields).
type Result struct {
	Scenario        string                  `json:"scenario"`
	Profile         Profile                 `json:"profile"`
	Seed            uint64                  `json:"seed"`
	RTTMS           float64                 `json:"rtt_ms"`
	Loss            float64                 `json:"loss"`
	LatencyBudgetMS float64                 `json:"latency_budget_ms"`
	MediaS          float64                 `json:"media_s"`
	FramesSent      int                     `json:"frames_sent"`
	OnTimeRatio     float64                 `json:"on_time_ratio"`
	LatencyMS       Percentiles             `json:"latency_ms"`
	GoodputBPS      float64                 `json:"goodput_bps"`
	WireOverhead    float64                 `json:"wire_overhead"`
	WireOverheadIP  float64                 `json:"wire_overhead_ip"`
	SenderDropped   int                     `json:"sender_dropped"`
	Streams         map[string]StreamResult `json:"streams"`
	PayloadBytes    int64                   `json:"payload_bytes"`
	MediaBytes      int64                   `json:"media_bytes"`
	FECBytes        int64                   `json:"fec_bytes"`
	FECPackets      int64                   `json:"fec_packets"`
	RTXBytes        int64                   `json:"rtx_bytes"`
	FeedbackBytes   int64                   `json:"feedback_bytes"`
	MediaPackets    int64                   `json:"media_packets"`
	LostPackets     int64                   `json:"lost_packets"`
	RecoveredFEC    int64                   `json:"recovered_fec"`
	Retransmissions int64                   `json:"retransmissions"`
	RTXPerLoss      *float64                `json:"rtx_per_loss"`
	RTXSentTooLate  int64                   `json:"rtx_sent_too_late"`
	RTXArrivedLate  int64                   `json:"rtx_arrived_late"`
	ResidualLoss    float64                 `json:"residual_loss"`
	FECOverhead1s   []float64               `json:"fec_overhead_1s"`

	// The pacer issue's fields: the largest of the per-second p95
	// latencies of delivered frames (WindowP95LatencyMS, by completion
	// second from the media's start, leaving out the frames completed in
	// the first second after a capacity drop; null for a second left with
	// none), completed frames that completed after their deadline over
	// completed frames, the sender's largest pacer queue delay right after
	// a frame joined it, and the video frame bytes completed in each
	// second.
	//
	// The jitter buffer's fields, from when the receiver released each
	// frame: capture-to-playout percentiles and mean over played frames,
	// the least-squares slope of that latency over the run, W3C freezes and
	// pauses of the video (rendered frames: released and decodable), the
	// largest |A/V offset| (a video frame's capture-to-playout minus that
	// of the audio playing then, both played at their playout time: the
	// last audio frame while it lasts, else the next; frames played late
	// are left out), and frames
	// played at their playout time (not completed after it) over frames
	// sent.
	PlayoutLatencyMS      Percentiles `json:"playout_latency_ms"`
	PlayoutLatencyMSMean  float64     `json:"playout_latency_ms_mean"`
	LatencySlopeMSPerMin  float64     `json:"latency_slope_ms_per_min"`
	FreezeCount           int64       `json:"freeze_count"`
	TotalFreezesDurationS float64     `json:"total_freezes_duration_s"`
	PauseCount            int64       `json:"pause_count"`
	AVOffsetMSMax         float64     `json:"av_offset_ms_max"`
	PlayedOnTimeRatio     float64     `json:"played_on_time_ratio"`
	// The playout offset's excess over the one the receiver wants (the
	// jitterbuffer's Stats.Excess, read as each frame is released), mean
	// over the frames released in the media's first and last 5 min; rows
	// of 10 min or more only (the never-accumulates check: the last within
	// 5 ms of the first).
	ExcessMSFirst5 *float64 `json:"excess_ms_first5,omitempty"`
	ExcessMSLast5  *float64 `json:"excess_ms_last5,omitempty"`
	// Rows where loss stops (Scenario.LossStop): the receiver's largest
	// recovery allowance (jitterbuffer Stats.Allowance) when it stopped and
	// 10 s later.
	AllowanceMSAtLossStop   *float64 `json:"allowance_ms_at_loss_stop,omitempty"`
	AllowanceMS10sAfterStop *float64 `json:"allowance_ms_10s_after_loss_stop,omitempty"`
	// AllowanceMSDuringLoss (rows where loss stops): the same, read at
	// the end of each second of media before it stopped.
	AllowanceMSDuringLoss *Percentiles `json:"allowance_ms_during_loss,omitempty"`
	// RecoveryMS: the time loss added to frames that completed anyway
	// (their completion at the receiver less when their original packets
	// would all have arrived without loss, from the bottleneck queue ahead
	// of each; jitter after the bottleneck not modelled), over the frames
	// one of whose originals was lost; omitted without such frames. The
	// jitterbuffer issue's recovery-aware bound reads the allowance
	// against it.
	RecoveryMS *Percentiles `json:"recovery_ms,omitempty"`
	// The receiver's clock-drift estimate 30 s into the media and at its
	// end (ppm, receiver minus sender; the drift rows skew the receiver's
	// clock by Scenario.ReceiverClock).
	DriftPPM30s float64 `json:"drift_ppm_30s"`
	DriftPPMEnd float64 `json:"drift_ppm_end"`
	// DriftSettledS (rows with a skewed receiver clock): the media second
	// from which the estimate stayed within ±10 ppm of the skew to the
	// end; null if it never did.
	DriftSettledS *float64 `json:"drift_settled_s,omitempty"`
	// Baselines (rows with Scenario.Baselines): our playout beside a
	// fixed buffer, a NetEq-style one and the offline optimum.
	Baselines *Baselines `json:"baselines,omitempty"`

	WindowP95LatencyMSMax float64    `json:"window_p95_latency_ms_max"`
	WindowP95LatencyMS    []*float64 `json:"window_p95_latency_ms"`
	LateDeliveredRatio    float64    `json:"late_delivered_ratio"`
	PacerQueueMSMax       float64    `json:"pacer_queue_ms_max"`
	VideoDelivered1s      []int64    `json:"video_delivered_bytes_1s"`
	// Drop signalling: retransmissions sent for frames the sender had
	// dropped (0: it declares them, docs/PROTOCOL.md §6.1 SPDR), and the
	// frames the receiver reports as dropped by the sender.
	RTXForDropped           int64 `json:"rtx_for_dropped"`
	ReceiverDroppedBySender int64 `json:"receiver_dropped_by_sender"`
	// PacerWaitMS: the sender's time in its pacer queue per class (audio,
	// retransmission, key, video, data; classes with nothing sent left
	// out): frames from WriteFrame until their last fragment left,
	// retransmissions from the NACK until they left. Histogram upper
	// bounds: 0.1 ms resolution below 1 ms, 0.5 ms below 10 ms.
	PacerWaitMS map[string]WaitResult `json:"pacer_wait_ms"`
	// SenderDroppedBy: the frames the sender dropped by reason and pacer
	// class (core.DropReason and cc.Class names; empty entries left out).
	SenderDroppedBy map[string]map[string]int64 `json:"sender_dropped_by"`
	// RTXBehindFrames: retransmissions that left after video or data frame
	// bytes sent since their NACK came.
	RTXBehindFrames int64 `json:"rtx_behind_frames"`
	// ProbePaddingPackets and ProbePaddingBytes: the congestion
	// controller's probe padding (copies of recent packets, sent as
	// retransmissions), counted apart: not in retransmissions, rtx_bytes,
	// lost_packets or the overhead ratios' retransmission share (they are
	// in wire_overhead).
	ProbePaddingPackets int64 `json:"probe_padding_packets"`
	ProbePaddingBytes   int64 `json:"probe_padding_bytes"`
	// SenderDroppedAfterDropS: a stream's media seconds (frames x frame
	// interval) the sender dropped among the frames captured from a
	// capacity drop until the next capacity change; the largest over the
	// row's drops and streams (0 without a drop).
	SenderDroppedAfterDropS float64 `json:"sender_dropped_after_drop_s"`
	// AppLimitedBoundMax (rows with source steps, run with cc.GCC): before
	// the first source step, the largest ratio of flow 0's transport
	// target to max(2 x its sender's send rate over the last 500 ms, the
	// highest rate its probes measured within 10 s); at most 1 keeps the
	// cc issue's app-limited bound.
	AppLimitedBoundMax *float64 `json:"app_limited_bound_max,omitempty"`
	// Controller (rows whose sender runs cc.GCC): flow 0's controller
	// counters at the end of the run (cc.GCCStats, from the connection's
	// Stats().Congestion).
	Controller *ControllerResult `json:"controller,omitempty"`

	// Phases: each constant phase of the row (capacity and the set of
	// active flows unchanged; a phase with no media flow is left out),
	// measured at the bottleneck over its converged part (the phase minus
	// Scenario.ConvergeSkip, 5 s by default): utilization (the media flows'
	// wire bytes leaving the queue / (min(capacity, what the active sources
	// can offer) x window)), queueing delay of every datagram leaving it
	// (all traffic), the media flows' share of datagrams the queue dropped,
	// and the least Jain index of the media flows' bytes over 5 s windows.
	// Times are on the row clock: seconds from the media's start, or from
	// the run's in a row with Flows. Flows: each media flow's active time
	// and means over it.
	Phases []PhaseResult `json:"phases"`
	Flows  []FlowResult  `json:"flows"`

	// Reference: the same row run with gcc-02 as written (rows with
	// Scenario.Reference), the baseline column.
	Reference *ReferenceResult `json:"reference,omitempty"`

	LossStopS *float64 `json:"loss_stop_s,omitempty"`
	Corrupt   int      `json:"corrupt"`
	SimS      float64  `json:"sim_s"`

	// Wall-clock fields: the only ones that differ between runs of a seed.
	SimSpeed float64 `json:"sim_speed"`
	WallS    float64 `json:"wall_s"`
}

// ReferenceResult is a row run again with the reference controller.
type ReferenceResult struct {
	Controller  string        `json:"controller"`
	OnTimeRatio float64       `json:"on_time_ratio"`
	GoodputBPS  float64       `json:"goodput_bps"`
	LatencyMS   Percentiles   `json:"latency_ms"`
	Phases      []PhaseResult `json:"phases"`
	Flows       []FlowResult  `json:"flows"`
}

// ControllerResult is cc.GCCStats' counters as the bench reports them.
type ControllerResult struct {
	Overuses           int64 `json:"overuses"`
	OveruseCuts        int64 `json:"overuse_cuts"`
	StandingCuts       int64 `json:"standing_cuts"`
	LossCuts           int64 `json:"loss_cuts"`
	Undos              int64 `json:"undos"`
	DrainRestores      int64 `json:"drain_restores"`
	CompetitiveEntries int64 `json:"competitive_entries"`
	Probes             int64 `json:"probes"`
	ProbeHits          int64 `json:"probe_hits"`
	UpProbes           int64 `json:"up_probes"`
	UpProbeMisses      int64 `json:"up_probe_misses"`
	CutsAfterUpProbe   int64 `json:"cuts_after_up_probe"`
}

// WaitResult is one class's time in the pacer queue, in ms.
type WaitResult struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// Report is what -json writes.
type Report struct {
	Results []Result `json:"results"`
}

// percentiles computes nearest-rank percentiles of latencies (ms; +Inf for
// frames never completed).
func percentiles(lat []float64) Percentiles {
	if len(lat) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(p float64) *float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		i = min(max(i, 0), len(s)-1)
		if math.IsInf(s[i], 1) {
			return nil
		}
		v := math.Round(s[i]*1000) / 1000
		return &v
	}
	return Percentiles{P50: at(50), P95: at(95), P99: at(99), Max: at(100)}
}

func fmtMS(v *float64) string {
	if v == nil {
		return "inf"
	}
	return fmt.Sprintf("%.1f", *v)
}

// WriteTable prints results as an aligned table.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join([]string{"scenario", "frames", "on_time", "p50_ms", "p95_ms", "p99_ms", "max_ms",
		"goodput_kbps", "wire", "wire_ip", "dropped", "lost_pkts", "sim_speed", ""}, "\t"))
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%.4f\t%s\t%s\t%s\t%s\t%.0f\t%.3f\t%.3f\t%d\t%d\t%.0fx\t\n",
			r.Scenario, r.FramesSent, r.OnTimeRatio, fmtMS(r.LatencyMS.P50), fmtMS(r.LatencyMS.P95),
			fmtMS(r.LatencyMS.P99), fmtMS(r.LatencyMS.Max), r.GoodputBPS/1000, r.WireOverhead, r.WireOverheadIP,
			r.SenderDropped, r.LostPackets, r.SimSpeed)
	}
	return tw.Flush()
}
