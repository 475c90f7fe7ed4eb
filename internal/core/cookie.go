package core

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"net/netip"
	"time"

	"github.com/spillway-rt/spillway/clock"
)

// CookieLifetime is how long a Retry's cookie stays valid.
const CookieLifetime = 10 * time.Second

const (
	cookieMACLen = 16
	cookieLen    = 8 + cookieMACLen
)

// cookieJar mints and checks stateless handshake cookies: timestamp (8 B) ||
// HMAC-SHA-256(secret, address || port || client connection ID ||
// timestamp)[:16] (docs/PROTOCOL.md §4.2).
type cookieJar struct {
	mac     hash.Hash
	scratch [64]byte
	sum     [sha256.Size]byte
}

func newCookieJar(secret []byte) *cookieJar {
	return &cookieJar{mac: hmac.New(sha256.New, secret)}
}

func (j *cookieJar) compute(ts uint64, from netip.AddrPort, clientCID uint32) []byte {
	b := j.scratch[:0]
	a16 := from.Addr().As16()
	b = append(b, a16[:]...)
	b = binary.BigEndian.AppendUint16(b, from.Port())
	b = binary.BigEndian.AppendUint32(b, clientCID)
	b = binary.BigEndian.AppendUint64(b, ts)
	j.mac.Reset()
	j.mac.Write(b)
	return j.mac.Sum(j.sum[:0])[:cookieMACLen]
}

// mint appends a cookie for from and clientCID at now to dst.
func (j *cookieJar) mint(dst []byte, now clock.Time, from netip.AddrPort, clientCID uint32) []byte {
	ts := uint64(now)
	dst = binary.BigEndian.AppendUint64(dst, ts)
	return append(dst, j.compute(ts, from, clientCID)...)
}

// check verifies a cookie. It returns the cookie's mint time and whether it
// is valid (authentic, bound to from and clientCID, not expired, not from
// the future).
func (j *cookieJar) check(cookie []byte, now clock.Time, from netip.AddrPort, clientCID uint32) (minted clock.Time, ok bool) {
	if len(cookie) != cookieLen {
		return 0, false
	}
	ts := binary.BigEndian.Uint64(cookie)
	minted = clock.Time(ts)
	if minted > now || now.Sub(minted) > CookieLifetime {
		return 0, false
	}
	want := j.compute(ts, from, clientCID)
	return minted, subtle.ConstantTimeCompare(want, cookie[8:]) == 1
}
