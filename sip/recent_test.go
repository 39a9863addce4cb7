package sip

import (
	"fmt"
	"testing"
	"time"
)

func TestRecentCalls(t *testing.T) {
	now := time.Unix(1000, 0)
	r := newRecentCalls(32*time.Second, func() time.Time { return now })
	r.add("a")
	now = now.Add(10 * time.Second)
	r.add("b")
	if !r.has("a") || !r.has("b") || r.has("c") {
		t.Fatalf("has a/b/c = %v/%v/%v, want true/true/false", r.has("a"), r.has("b"), r.has("c"))
	}
	now = now.Add(22 * time.Second) // a is 32 s old
	if r.has("a") {
		t.Error("a remembered past its TTL")
	}
	if !r.has("b") {
		t.Error("b forgotten before its TTL")
	}
	// Re-adding a key extends it; the older FIFO entry must not delete it.
	r.add("b")
	now = now.Add(11 * time.Second) // first b entry expired, second not
	r.add("c")
	if !r.has("b") {
		t.Error("b re-added but forgotten at its first deadline")
	}
	if r.len() != 2 { // b and c; a expired
		t.Errorf("len = %d, want 2", r.len())
	}
}

func TestRecentCallsBounded(t *testing.T) {
	now := time.Unix(0, 0)
	r := newRecentCalls(time.Second, func() time.Time { return now })
	for i := range 100000 {
		r.add(fmt.Sprint(i))
		now = now.Add(time.Millisecond)
	}
	// About one second's worth (1,000 keys) is live; the rest is gone
	// from the map and, after compaction, from the FIFO.
	if n := r.len(); n > 1001 {
		t.Errorf("len = %d after 100 s of adds with a 1 s TTL, want <= 1001", n)
	}
	if n := len(r.fifo) - r.head; n > 1001 {
		t.Errorf("live FIFO entries = %d, want <= 1001", n)
	}
	if cap(r.fifo) > 8192 {
		t.Errorf("FIFO capacity %d: the consumed front is not reclaimed", cap(r.fifo))
	}
}
