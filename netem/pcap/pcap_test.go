package pcap_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spillway-rt/spillway/clock"
	"github.com/spillway-rt/spillway/netem"
	"github.com/spillway-rt/spillway/netem/pcap"
	"github.com/spillway-rt/spillway/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	v4a = netip.MustParseAddrPort("10.0.0.1:5000")
	v4b = netip.MustParseAddrPort("10.0.0.2:7000")
	v6a = netip.MustParseAddrPort("[2001:db8::1]:5000")
	v6b = netip.MustParseAddrPort("[2001:db8::2]:7000")
)

func dataPacket(t testing.TB, pn uint32, payload string) []byte {
	t.Helper()
	h := wire.DataHeader{DstConnID: 0xabcd, PacketNumber: pn, Stream: 2, FrameID: 17, FragIndex: 1, FragCount: 3, SendTime: 99, Key: true}
	b, err := h.Append(nil)
	require.NoError(t, err)
	return append(b, payload...)
}

// reference builds the packet with gopacket's serialiser, which computes
// the same lengths and checksums independently.
func reference(t *testing.T, from, to netip.AddrPort, payload []byte) []byte {
	t.Helper()
	udp := &layers.UDP{SrcPort: layers.UDPPort(from.Port()), DstPort: layers.UDPPort(to.Port())}
	var ip gopacket.SerializableLayer
	if from.Addr().Is4() && to.Addr().Is4() {
		ip4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP,
			SrcIP: from.Addr().AsSlice(), DstIP: to.Addr().AsSlice()}
		require.NoError(t, udp.SetNetworkLayerForChecksum(ip4))
		ip = ip4
	} else {
		s, d := from.Addr().As16(), to.Addr().As16()
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: s[:], DstIP: d[:]}
		require.NoError(t, udp.SetNetworkLayerForChecksum(ip6))
		ip = ip6
	}
	buf := gopacket.NewSerializeBuffer()
	require.NoError(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		ip, udp, gopacket.Payload(payload)))
	return buf.Bytes()
}

// frames returns the records of a capture as written, without decoding.
func frames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	recs, err := pcap.ReadRecords(bytes.NewReader(b))
	require.NoError(t, err)
	var out [][]byte
	for _, r := range recs {
		require.NotErrorIs(t, r.Err, pcap.ErrNotUDP)
		out = append(out, r.Datagram)
	}
	return out
}

func TestWriterMatchesGopacketSerialisation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to netip.AddrPort
		payload  []byte
	}{
		{"ipv4", v4a, v4b, dataPacket(t, 1, "hello")},
		{"ipv4 odd length", v4a, v4b, dataPacket(t, 2, "hello!")},
		{"ipv4 empty", v4a, v4b, nil},
		{"ipv6", v6a, v6b, dataPacket(t, 3, "over IPv6")},
		{"mixed", v4a, v6b, dataPacket(t, 4, "mapped")},
		{"large", v4a, v4b, bytes.Repeat([]byte{0xff}, 9000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w, err := pcap.NewWriter(&out)
			require.NoError(t, err)
			require.NoError(t, w.WritePacket(time.Unix(1, 5), tc.from, tc.to, tc.payload))
			require.NoError(t, w.Close())

			want := reference(t, tc.from, tc.to, tc.payload)
			// Read back the raw frame, and check it against gopacket's.
			r := bytes.NewReader(out.Bytes())
			recs, err := pcap.ReadRecords(r)
			require.NoError(t, err)
			require.Len(t, recs, 1)
			assert.Equal(t, time.Unix(1, 5).UTC(), recs[0].Time.UTC())
			assert.True(t, bytes.Equal(tc.payload, recs[0].Datagram), "payload")
			assert.Equal(t, tc.from.Port(), recs[0].Src.Port())

			raw := out.Bytes()[24+16:] // file header, record header
			assert.Equal(t, want, raw, "lengths and checksums as gopacket computes them")
			p := gopacket.NewPacket(raw, pcap.LinkType, gopacket.Default)
			assert.Nil(t, p.ErrorLayer(), "gopacket decodes it cleanly")
		})
	}
}

func TestWriterSkipsDatagramsTooLongForIP(t *testing.T) {
	var out bytes.Buffer
	w, err := pcap.NewWriter(&out)
	require.NoError(t, err)
	require.NoError(t, w.WritePacket(time.Unix(0, 0), v4a, v4b, make([]byte, pcap.MaxPayloadIPv4+1)))
	require.NoError(t, w.WritePacket(time.Unix(0, 0), v6a, v6b, make([]byte, pcap.MaxPayloadIPv4+1)))
	require.NoError(t, w.WritePacket(time.Unix(0, 0), v4a, v4b, make([]byte, pcap.MaxPayloadIPv4)))
	require.NoError(t, w.Close())
	assert.EqualValues(t, 1, w.Skipped())
	assert.EqualValues(t, 2, w.Packets())
	assert.Len(t, frames(t, out.Bytes()), 2)
}

// failWriter fails every write after the first ok bytes.
type failWriter struct{ ok int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) <= f.ok {
		f.ok -= len(p)
		return len(p), nil
	}
	return 0, errDisk
}

func TestWriterErrorsAreSticky(t *testing.T) {
	w, err := pcap.NewWriter(&failWriter{})
	require.NoError(t, err, "the file header is buffered")
	require.ErrorIs(t, w.Flush(), errDisk, "and cannot be written")

	fw := &failWriter{ok: 24} // the file header reaches it on the first flush
	w, err = pcap.NewWriter(fw)
	require.NoError(t, err, "the header is buffered")
	payload := make([]byte, 1200)
	var werr error
	for range 200 { // more than the buffer holds
		if werr = w.WritePacket(time.Unix(0, 0), v4a, v4b, payload); werr != nil {
			break
		}
	}
	require.ErrorIs(t, werr, errDisk)
	assert.ErrorIs(t, w.Err(), errDisk)
	assert.ErrorIs(t, w.WritePacket(time.Unix(0, 0), v4a, v4b, payload), errDisk, "sticky")
	assert.ErrorIs(t, w.Flush(), errDisk)
	assert.ErrorIs(t, w.Close(), errDisk)
	assert.ErrorIs(t, w.Close(), errDisk, "Close is idempotent")

	var out bytes.Buffer
	w, err = pcap.NewWriter(&out)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.ErrorIs(t, w.WritePacket(time.Unix(0, 0), v4a, v4b, payload), pcap.ErrClosed)
}

func TestCreateAndReadFile(t *testing.T) {
	path := t.TempDir() + "/x.pcap"
	w, err := pcap.Create(path)
	require.NoError(t, err)
	hook := w.Virtual()
	for i := range 5 {
		hook(clock.Time(i)*clock.Time(time.Millisecond), v4a, v4b, dataPacket(t, uint32(i), "x"))
	}
	require.NoError(t, w.Close())
	recs, err := pcap.ReadFile(path)
	require.NoError(t, err)
	require.Len(t, recs, 5)
	for i, r := range recs {
		require.NoError(t, r.Err)
		assert.Equal(t, clock.Time(i)*clock.Time(time.Millisecond), r.Virtual())
		assert.EqualValues(t, i, r.Spillway.PacketNumber)
	}
	_, err = pcap.Create(t.TempDir() + "/missing/x.pcap")
	assert.Error(t, err)
	_, err = pcap.ReadFile(t.TempDir() + "/missing.pcap")
	assert.Error(t, err)
}

func TestWriterAllocatesNothingPerPacket(t *testing.T) {
	var out bytes.Buffer
	out.Grow(64 << 20)
	w, err := pcap.NewWriter(&out)
	require.NoError(t, err)
	hook := w.Virtual()
	b := dataPacket(t, 1, string(make([]byte, 1200)))
	allocs := testing.AllocsPerRun(1000, func() { hook(12345, v4a, v4b, b) })
	assert.Zero(t, allocs)
	allocs = testing.AllocsPerRun(1000, func() { hook(12345, v6a, v6b, b) })
	assert.Zero(t, allocs)
	require.NoError(t, w.Close())
}

// pinger is a simulator node that sends count data packets to `to`, one per
// millisecond, and counts what it receives.
type pinger struct {
	to       netip.AddrPort
	count    int
	sent     int
	next     clock.Time
	received int
}

func (p *pinger) HandleDatagram(clock.Time, netip.AddrPort, []byte) { p.received++ }
func (p *pinger) HandleTimeout(clock.Time)                          {}
func (p *pinger) PollTransmit(now clock.Time, dst []byte) (int, netip.AddrPort, bool) {
	if p.sent == p.count || now < p.next {
		return 0, netip.AddrPort{}, false
	}
	h := wire.DataHeader{DstConnID: 7, PacketNumber: uint32(p.sent), Stream: 1, FrameID: uint16(p.sent / 3),
		FragIndex: uint16(p.sent % 3), FragCount: 3}
	b, _ := h.Append(dst[:0])
	n := len(b) + copy(dst[len(b):], "payload")
	p.sent++
	p.next = now.Add(time.Millisecond)
	return n, p.to, true
}

func (p *pinger) NextTimeout() clock.Time {
	if p.sent == p.count {
		return clock.Never
	}
	return p.next
}

func TestSimulatorCapture(t *testing.T) {
	sim := netem.New(1)
	a, b := &pinger{to: v4b, count: 500}, &pinger{to: v4a, count: 100}
	require.NoError(t, sim.AddNode(v4a, a))
	require.NoError(t, sim.AddNode(v4b, b))
	var fwd, rev bytes.Buffer
	fw, err := pcap.NewWriter(&fwd)
	require.NoError(t, err)
	rw, err := pcap.NewWriter(&rev)
	require.NoError(t, err)
	sim.SetCapture(v4a, v4b, fw.Virtual()) // before Connect: allowed
	lossy := netem.LinkConfig{Delay: 20 * time.Millisecond, Jitter: 10 * time.Millisecond, Reorder: true, Loss: 0.2}
	require.NoError(t, sim.Connect(v4a, v4b, lossy, netem.LinkConfig{Delay: 5 * time.Millisecond}))
	sim.SetCapture(v4b, v4a, rw.Virtual())
	sim.RunUntil(clock.Never)
	require.NoError(t, fw.Close())
	require.NoError(t, rw.Close())

	for _, c := range []struct {
		name     string
		buf      []byte
		from, to netip.AddrPort
	}{{"fwd", fwd.Bytes(), v4a, v4b}, {"rev", rev.Bytes(), v4b, v4a}} {
		recs, err := pcap.ReadRecords(bytes.NewReader(c.buf))
		require.NoError(t, err)
		st := sim.Link(c.from, c.to).Stats()
		require.EqualValues(t, st.PacketsDelivered, len(recs), c.name)
		last := clock.Time(-1)
		for _, r := range recs {
			require.NoError(t, r.Err)
			assert.Equal(t, c.from, r.Src)
			assert.Equal(t, c.to, r.Dst)
			assert.GreaterOrEqual(t, r.Virtual(), last, "virtual times never go back")
			last = r.Virtual()
			s := r.Spillway
			assert.Equal(t, wire.TypeData, s.Type)
			assert.EqualValues(t, 7, s.DstConnID)
			assert.EqualValues(t, s.PacketNumber%3, s.Data.FragIndex)
			assert.Equal(t, "payload", string(s.Payload()))
		}
		assert.LessOrEqual(t, last, sim.Now())
	}
	assert.Equal(t, 100, a.received, "the reverse link loses nothing")
}

func TestNetworkCapture(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := netem.NewNetwork(1)
		defer n.Close()
		var out bytes.Buffer
		w, err := pcap.NewWriter(&out)
		require.NoError(t, err)
		n.SetCapture(v4a, v4b, w.CaptureFunc(n.Epoch())) // before the link exists
		require.NoError(t, n.SetLink(v4a, v4b, netem.LinkConfig{Delay: 10 * time.Millisecond}))
		ca, err := n.Listen(v4a)
		require.NoError(t, err)
		cb, err := n.Listen(v4b)
		require.NoError(t, err)
		start := time.Now()
		buf := make([]byte, 2048)
		for i := range 10 {
			_, err := ca.WriteToAddrPort(dataPacket(t, uint32(i), "net"), v4b)
			require.NoError(t, err)
			_, _, err = cb.ReadFromAddrPort(buf)
			require.NoError(t, err)
		}
		_, err = cb.WriteToAddrPort([]byte("not captured: no hook b->a"), v4a)
		require.NoError(t, err)
		_, _, err = ca.ReadFromAddrPort(buf)
		require.NoError(t, err)
		require.NoError(t, w.Close())

		recs, err := pcap.ReadRecords(&out)
		require.NoError(t, err)
		require.Len(t, recs, 10)
		for i, r := range recs {
			require.NoError(t, r.Err)
			assert.EqualValues(t, i, r.Spillway.PacketNumber)
			// In the bubble time is exact: the i-th datagram arrives after
			// i+1 delays.
			assert.True(t, r.Time.Equal(start.Add(time.Duration(i+1)*10*time.Millisecond)), "record %d at %v", i, r.Time.Sub(start))
		}

		n.SetCapture(v4a, v4b, nil) // removing it: nothing is called any more
		_, err = ca.WriteToAddrPort([]byte("x"), v4b)
		require.NoError(t, err)
		_, _, err = cb.ReadFromAddrPort(buf)
		require.NoError(t, err)
	})
}

func TestNetworkWithoutCaptureAllocatesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := netem.NewNetwork(1)
		defer n.Close()
		ca, err := n.Listen(v4a)
		require.NoError(t, err)
		cb, err := n.Listen(v4b)
		require.NoError(t, err)
		msg, buf := make([]byte, 1200), make([]byte, 2048)
		round := func() {
			_, _ = ca.WriteToAddrPort(msg, v4b)
			_, _, _ = cb.ReadFromAddrPort(buf)
		}
		round()
		assert.Zero(t, testing.AllocsPerRun(200, round))
	})
}
