package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/spillway-rt/spillway/bench"
)

// The payload of every frame push sends, so that play can verify it end to
// end. All integers are big endian; n is the frame's length.
//
//	offset  size    field
//	0       4       magic "SPWY"
//	4       1       source: 0 audio, 1 video (bench.Source)
//	5       8       sequence number within the source, from 0
//	13      4       payload length n: the whole frame, header and CRC included
//	17      n - 21  filler: a splitmix64 stream seeded from (source, sequence)
//	n - 4   4       CRC-32C (Castagnoli) of bytes [0, n-4)
//
// A frame is at least payloadMin (21) bytes: push pads a frame the traffic
// model makes smaller than that, and counts the padded size.
const (
	payloadMagic     = "SPWY"
	payloadHeaderLen = 17
	payloadCRCLen    = 4
	payloadMin       = payloadHeaderLen + payloadCRCLen
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors decodePayload returns.
var (
	errPayloadShort  = errors.New("payload: shorter than header and CRC")
	errPayloadCRC    = errors.New("payload: CRC-32C mismatch")
	errPayloadMagic  = errors.New("payload: bad magic")
	errPayloadLength = errors.New("payload: length field differs from the frame's size")
	errPayloadSource = errors.New("payload: unknown source")
	errPayloadFiller = errors.New("payload: filler differs from its (source, sequence) pattern")
)

// payloadHeader is what a payload names.
type payloadHeader struct {
	Source bench.Source
	Seq    int64
	Len    int
}

// payloadSize is the size of the frame push sends for a traffic-model frame
// of size bytes.
func payloadSize(size int) int { return max(size, payloadMin) }

// encodePayload fills all of b (at least payloadMin bytes) as the payload of
// frame seq of source src.
func encodePayload(b []byte, src bench.Source, seq int64) {
	if len(b) < payloadMin {
		panic(fmt.Sprintf("spillway: payload of %d bytes, minimum %d", len(b), payloadMin))
	}
	n := len(b)
	copy(b, payloadMagic)
	b[4] = byte(src)
	binary.BigEndian.PutUint64(b[5:], uint64(seq))
	binary.BigEndian.PutUint32(b[13:], uint32(n))
	fillPayload(b[payloadHeaderLen:n-payloadCRCLen], src, seq)
	encodeCRC(b)
}

// encodeCRC writes the CRC-32C of b's other bytes into its last 4.
func encodeCRC(b []byte) {
	n := len(b)
	binary.BigEndian.PutUint32(b[n-payloadCRCLen:], crc32.Checksum(b[:n-payloadCRCLen], castagnoli))
}

// decodePayload verifies b and returns its header. Any error means the
// frame is corrupt; the CRC is checked first, so a damaged frame reports
// errPayloadCRC.
func decodePayload(b []byte) (payloadHeader, error) {
	n := len(b)
	if n < payloadMin {
		return payloadHeader{}, errPayloadShort
	}
	if crc32.Checksum(b[:n-payloadCRCLen], castagnoli) != binary.BigEndian.Uint32(b[n-payloadCRCLen:]) {
		return payloadHeader{}, errPayloadCRC
	}
	if string(b[:4]) != payloadMagic {
		return payloadHeader{}, errPayloadMagic
	}
	h := payloadHeader{
		Source: bench.Source(b[4]),
		Seq:    int64(binary.BigEndian.Uint64(b[5:])),
		Len:    int(binary.BigEndian.Uint32(b[13:])),
	}
	if h.Len != n {
		return h, errPayloadLength
	}
	if h.Source != bench.SourceAudio && h.Source != bench.SourceVideo {
		return h, errPayloadSource
	}
	if !checkFiller(b[payloadHeaderLen:n-payloadCRCLen], h.Source, h.Seq) {
		return h, errPayloadFiller
	}
	return h, nil
}

// fillerState is the splitmix64 state a frame's filler starts from.
func fillerState(src bench.Source, seq int64) uint64 {
	return uint64(seq)<<1 ^ uint64(src) ^ 0x5350_5759_0000_0000
}

// splitmix64 advances x and returns the next output
// (https://prng.di.unimi.it/splitmix64.c).
func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func fillPayload(b []byte, src bench.Source, seq int64) {
	x := fillerState(src, seq)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, splitmix64(&x))
		b = b[8:]
	}
	if len(b) > 0 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], splitmix64(&x))
		copy(b, w[:])
	}
}

func checkFiller(b []byte, src bench.Source, seq int64) bool {
	x := fillerState(src, seq)
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != splitmix64(&x) {
			return false
		}
		b = b[8:]
	}
	if len(b) > 0 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], splitmix64(&x))
		return string(b) == string(w[:len(b)])
	}
	return true
}
