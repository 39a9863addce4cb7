package smpp

import (
	"fmt"
	"strconv"
	"time"

	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/store"
)

// Two bounds keep the queue and the receipt index from growing without
// end, both run by the committer on its tick:
//
//   - sms.validity: a message whose parts are not all accepted by the
//     carrier within it (counted from the record's created_at, so it
//     survives a restart) ends expired, reason validityExpired; its
//     unaccepted parts are expired and no longer submitted, its queue row
//     is deleted.
//   - sms.receipt_wait: a part's receipt index rows (dlr/ and dlrtime/)
//     are deleted when its receipt gives it a final state, or receipt_wait
//     after it was accepted if none does. The dlrtime/ rows are read in
//     buckets of dlrBucketBits of Unix milliseconds (about 66 s), each
//     scanned within its own key range, so a sweep never walks over the
//     rows (or the tombstones of rows) of parts still waiting.
//
//	dlrtime/<ms, 16 hex>/<carrier>/<id>   bucket = the first 12 hex digits
//	|-- swept buckets --|-- bucket of now-receipt_wait and later: kept --|

// validityExpired is the Reason of a message that ended expired because
// the carrier did not accept every part within sms.validity.
const validityExpired = "validity_expired"

// dlrBucketBits: a dlrtime/ bucket spans 2^16 ms; a receipt index row is
// deleted between receipt_wait and receipt_wait + 66 s after acceptance.
const dlrBucketBits = 16

// dlrSweepLimit bounds the rows one sweep deletes, and dlrSweepBuckets
// the buckets it looks at, so that one tick stays short; the rest go on
// the next tick.
const (
	dlrSweepLimit   = 4096
	dlrSweepBuckets = 1024
)

// pastValidity reports whether m, not yet accepted whole, is past its
// validity at now.
func (s *Service) pastValidity(m *outMsg, now time.Time) bool {
	return !now.Before(m.rec.CreatedAt.Add(s.opts.SMS.Validity))
}

// sweepValidity (committer) ends expired every message in flight past its
// validity.
func (s *Service) sweepValidity(c *commit) {
	now := s.now()
	for _, m := range s.active {
		if !m.cancelled.Load() && s.pastValidity(m, now) {
			s.expireOut(c, m, now)
		}
	}
}

// expireOut (committer): the parts of m not accepted yet are given up;
// the message ends expired unless a part already failed (failed wins, as
// for receipts). Parts the carrier did accept keep their state, and their
// receipts still count (a later failure turns the message failed).
func (s *Service) expireOut(c *commit, m *outMsg, now time.Time) {
	m.cancelled.Store(true) // the bind skips its queued parts from now on
	n := 0
	for i, ok := range m.q.Accepted {
		if ok {
			continue
		}
		p := &m.rec.Parts[i]
		p.Status, p.Error, p.DoneAt = routing.MsgExpired, "not accepted by the carrier within sms.validity", &now
		n++
	}
	s.metrics.partsExpired.WithLabelValues(m.q.Carrier).Add(float64(n))
	s.aggregate(m)
	switch m.rec.Status {
	case routing.MsgQueued, routing.MsgSent:
		// Parts accepted but without a final receipt: the message is
		// expired all the same, since it will never be delivered whole.
		m.rec.Status, m.rec.DoneAt = routing.MsgExpired, &now
		s.metrics.messages.WithLabelValues(routing.DirectionOut, routing.MsgExpired).Inc()
	}
	if m.rec.Status == routing.MsgExpired {
		m.rec.Reason = validityExpired
	}
	s.log.Info("SMS expired before the carrier accepted it", "message", m.rec.ID, "parts_expired", n, "status", m.rec.Status)
	c.touch(m)
}

// dlrBucket is the dlrtime/ bucket of a Unix millisecond.
func dlrBucket(ms int64) int64 { return max(ms, 0) >> dlrBucketBits }

// dlrBucketPrefix is the key prefix of every dlrtime/ row in bucket b.
func dlrBucketPrefix(b int64) []byte {
	return []byte(store.PrefixDLRTime + fmt.Sprintf("%016x", b<<dlrBucketBits)[:16-dlrBucketBits/4])
}

// sweepReceiptIndex (committer) deletes the receipt index rows of parts
// accepted more than sms.receipt_wait ago: whole buckets older than the
// bucket of now - receipt_wait.
func (s *Service) sweepReceiptIndex(c *commit) {
	until := dlrBucket(s.now().Add(-s.opts.SMS.ReceiptWait).UnixMilli())
	if !s.dlrSweepInit {
		// The oldest row says where to start (once: this scan may walk
		// over tombstones).
		s.dlrSweepNext = until
		_ = s.db.Scan([]byte(store.PrefixDLRTime), nil, func(k, _ []byte) (bool, error) {
			if parts, ok := store.SplitKey(k, store.PrefixDLRTime, 2); ok {
				if ms, err := strconv.ParseInt(parts[0], 16, 64); err == nil {
					s.dlrSweepNext = min(until, dlrBucket(ms))
				}
			}
			return false, nil
		})
		s.dlrSweepInit = true
	}
	deleted := 0
	for buckets := 0; s.dlrSweepNext < until && buckets < dlrSweepBuckets; buckets++ {
		full := true
		err := s.db.Scan(dlrBucketPrefix(s.dlrSweepNext), nil, func(k, v []byte) (bool, error) {
			if deleted == dlrSweepLimit {
				full = false
				return false, nil
			}
			deleted++
			c.b.Delete(k)
			parts, ok := store.SplitKey(k, store.PrefixDLRTime, 3)
			if !ok {
				return true, nil
			}
			carrier, id := parts[1], parts[2]
			// The dlr/ row goes only if it still names this part: a
			// carrier may reuse an id, and a newer part's row stays.
			key := store.Key(store.PrefixDLR, carrier, id)
			if cur, err := s.db.Get(key); err == nil && string(cur) == string(v) {
				c.b.Delete(key)
			}
			if s.dlrIdx[carrier+"/"+id] == string(v) {
				delete(s.dlrIdx, carrier+"/"+id)
			}
			s.metrics.receiptsMissing.WithLabelValues(carrier).Inc()
			return true, nil
		})
		if err != nil {
			s.log.Error("sweeping the receipt index", "error", err)
			return
		}
		if !full {
			return // the rest of this bucket on the next tick
		}
		s.dlrSweepNext++
	}
}
