// Package jitterbuffer holds complete frames until their playout time and
// releases them in order, so the application renders at a steady pace
// whatever the network's jitter, and latency never keeps growing.
//
// Terms (DESIGN §4): a frame's playout time is its capture time plus the
// playout offset; the offset is the least transit seen plus the target.
// Frames are released in frame-id order, each at its playout time; frames
// that never arrived are skipped and counted on the next frame released
// (LostBefore).
//
// An Adaptive buffer (the default) sets its target from:
//   - a high quantile (Config.Quantile, 0.99) of the transit above the
//     least of the frames that needed no repair, with a memory of
//     Config.Window (2 s, so jitter that eases is soon forgotten), kept in
//     a 1 ms histogram updated in O(1); above 0.99, samples older than
//     Config.Horizon (2 Windows) leave it altogether, since a higher
//     quantile would otherwise hold an eased jitter for Window
//     ln(1/(1-Quantile));
//   - plus, while losses recur, the time a repair takes (NoteRecovery),
//     fading over 3 s once they stop;
//   - at least the same quantile of the repaired frames' own transit
//     (Config.RecoveryWindow, 10 s) while they keep coming;
//   - for video, at least the last three key frames' transit, repaired
//     or not: too rare for a quantile over seconds, and each one late
//     would freeze the picture. When key frames come periodically (the
//     last three evenly spaced: a fixed GOP) and losses are not
//     recurring, this allowance is held only around the next one: the
//     offset starts to rise at the drain rate in time to meet it, and
//     drains once it and the frames sent behind it have played, so a key
//     frame's longer transit delays the frames near it, not all of them.
//     While losses are not recurring, the key frames and the frames sent
//     behind one stay out of the jitter quantile (Config.KeyAllowanceAlways
//     keeps them in and holds the allowance throughout).
//
// The offset moves toward the target at Config.DrainRate (RTC 10 %, Live
// 3 %) both ways: playout runs that much faster to drain excess and that
// much slower to grow, a stretch rather than a freeze (Group.Rate exposes
// it so an audio renderer can time-stretch). Until the group's first frame
// plays, no one sees the offset move, and it takes the target at once.
// With Config.CatchUp (an RTC option), a freeze instead skips to the newest
// decodable frame held: the frames before the newest key frame, and late
// frames nothing references, are released Dropped, and late frames do not
// lift the offset. Otherwise only a frame played late lifts it at once,
// to that frame: after a stall the held frames play in
// order instead of being skipped. Clock drift between sender and receiver
// is estimated from the least transit of each second (the line under them
// over the last 21 minutes: Moon, Skelly and Towsley's linear program) on
// both paths: the data packets' to this side (Group.ObserveTransit) and
// the pings' back to the sender (Group.ObserveReverseTransit, from the
// pongs' arrival times), the two lines weighed by how closely their
// seconds hug them. It is compensated: the least transit is carried
// along it.
//
// The buffers of one broadcast join a Group: they play at one offset, the
// largest any needs (of those whose frames still come: a stream silent for
// 5 s, or Reset, no longer counts), so audio and video stay in sync and
// drain together.
// A Fixed buffer plays at capture + Config.Delay (the bench's fixed
// baseline); a PassThrough buffer releases frames as they complete, in
// completion order (a frame an earlier LostBefore counted may still come:
// it is released Reordered).
// Video buffers (Config.Video) mark frames whose references were lost
// (Frame.Undecodable, NeedKey on the first) and count freezes and pauses
// by W3C webrtc-stats' rules; Stats gives W3C's jitterBuffer* sums.
//
// Like every core package, jitterbuffer never reads a clock: every call
// takes `now`. Nothing here is safe for concurrent use.
package jitterbuffer
