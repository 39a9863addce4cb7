package routing

import (
	"fmt"
	"strings"
	"time"

	"github.com/veilgw/veil/store"
)

// Check reads the whole database and reports every inconsistency between
// session records and their index rows: an index row naming a missing or
// closed session, an open session without its rows, two open sessions on
// one (participant, proxy) pair, an open session on a number not in the
// pool, a call record that does not decode, an interaction row naming a
// missing call (or another session's), a call of a session without its
// row, an SMS queue or receipt index row that does not match its message
// (see checkSMS). An empty result means the database is consistent. It is meant for
// `veild check` on a stopped daemon and for tests.
func Check(db *store.DB) ([]string, error) {
	var problems []string
	report := func(format string, args ...any) {
		if len(problems) < 1000 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	numbers := make(map[string]bool)
	err := db.Scan([]byte(store.PrefixNumber), nil, func(k, _ []byte) (bool, error) {
		parts, _ := store.SplitKey(k, store.PrefixNumber, 1)
		numbers[parts[0]] = true
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	open := make(map[string]*Session)
	pairs := make(map[pairKey]string)
	unique := make(map[string]string)
	sessions := make(map[string]bool)
	err = db.Scan([]byte(store.PrefixSession), nil, func(k, v []byte) (bool, error) {
		sess := new(Session)
		if err := decode(v, sess, &sess.V); err != nil {
			report("%s: %v", k, err)
			return true, nil
		}
		sessions[sess.ID] = true
		if sess.State != StateOpen {
			return true, nil
		}
		open[sess.ID] = sess
		if !numbers[sess.ProxyNumber] {
			report("open session %s uses proxy number %s, which is not in the pool", sess.ID, Mask(sess.ProxyNumber))
		}
		for _, p := range sess.Participants {
			key := pairKey{p.Number, sess.ProxyNumber}
			if other, dup := pairs[key]; dup {
				report("open sessions %s and %s share participant %s on proxy %s", other, sess.ID, Mask(p.Number), Mask(sess.ProxyNumber))
			}
			pairs[key] = sess.ID
		}
		if sess.UniqueName != "" {
			if other, dup := unique[sess.UniqueName]; dup {
				report("open sessions %s and %s share a unique_name", other, sess.ID)
			}
			unique[sess.UniqueName] = sess.ID
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	seen := make(map[pairKey]bool)
	err = db.Scan([]byte(store.PrefixSessionIndex), nil, func(k, v []byte) (bool, error) {
		parts, ok := store.SplitKey(k, store.PrefixSessionIndex, 2)
		if !ok {
			report("malformed index key %q", k)
			return true, nil
		}
		key := pairKey{parts[0], parts[1]}
		seen[key] = true
		if id := pairs[key]; id != string(v) {
			report("index row for participant %s on proxy %s names session %s, the open session of that pair is %q", Mask(parts[0]), Mask(parts[1]), v, id)
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for key, id := range pairs {
		if !seen[key] {
			report("open session %s has no index row for participant %s", id, Mask(key.participant))
		}
	}
	err = db.Scan([]byte(store.PrefixSessionUnique), nil, func(k, v []byte) (bool, error) {
		parts, _ := store.SplitKey(k, store.PrefixSessionUnique, 1)
		if id := unique[parts[0]]; id != string(v) {
			report("unique_name row names session %s, the open session with that name is %q", v, id)
		}
		delete(unique, parts[0])
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range unique {
		report("open session %s has no unique_name row", id)
	}
	if err := checkCalls(db, sessions, report); err != nil {
		return nil, err
	}
	if err := checkSMS(db, report); err != nil {
		return nil, err
	}
	return problems, nil
}

// checkCalls checks call and message records against the interaction
// index: every inter/ row names an existing record of its kind and session
// at the row's time, and every call or message of a session has its row.
func checkCalls(db *store.DB, sessions map[string]bool, report func(string, ...any)) error {
	type recInfo struct {
		session string
		key     string // its inter/ row
		indexed bool
	}
	recs := make(map[string]*recInfo) // kind + "/" + id
	scan := func(prefix, kind string, read func(v []byte) (id, session string, at time.Time, err error)) error {
		return db.Scan([]byte(prefix), nil, func(k, v []byte) (bool, error) {
			parts, _ := store.SplitKey(k, prefix, 1)
			id, session, at, err := read(v)
			if err != nil {
				report("%s: %v", k, err)
				return true, nil
			}
			if id != parts[0] {
				report("%s record at %q has id %q", kind, k, id)
			}
			info := &recInfo{session: session}
			if session != "" {
				info.key = string(interactionKey(session, at, id))
				if !sessions[session] {
					report("%s %s names session %s, which does not exist", kind, id, session)
				}
			}
			recs[kind+"/"+parts[0]] = info
			return true, nil
		})
	}
	err := scan(store.PrefixCall, KindCall, func(v []byte) (string, string, time.Time, error) {
		c := new(CallRecord)
		err := decode(v, c, &c.V)
		return c.ID, c.SessionID, c.StartedAt, err
	})
	if err != nil {
		return err
	}
	err = scan(store.PrefixMessage, KindMessage, func(v []byte) (string, string, time.Time, error) {
		m := new(MessageRecord)
		err := decode(v, m, &m.V)
		return m.ID, m.SessionID, m.CreatedAt, err
	})
	if err != nil {
		return err
	}
	err = db.Scan([]byte(store.PrefixInteraction), nil, func(k, v []byte) (bool, error) {
		parts, ok := store.SplitKey(k, store.PrefixInteraction, 3)
		if !ok || strings.Contains(parts[2], "/") {
			report("malformed interaction key %q", k)
			return true, nil
		}
		kind := string(v)
		if kind != KindCall && kind != KindMessage {
			report("interaction row %q has unknown kind %q", k, v)
			return true, nil
		}
		info := recs[kind+"/"+parts[2]]
		switch {
		case info == nil:
			report("interaction row %q names %s %s, which has no record", k, kind, parts[2])
		case info.key != string(k):
			report("interaction row %q does not match %s %s (session %q)", k, kind, parts[2], info.session)
		default:
			info.indexed = true
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for key, info := range recs {
		if info.session != "" && !info.indexed {
			kind, id, _ := strings.Cut(key, "/")
			report("%s %s of session %s has no interaction row", kind, id, info.session)
		}
	}
	return nil
}
