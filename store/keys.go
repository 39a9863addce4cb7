package store

import "strings"

// Key prefixes. On-disk format: never renumber, rename or reuse a prefix;
// add new ones at the end.
const (
	PrefixMeta          = "meta/"
	PrefixNumber        = "num/"
	PrefixSession       = "sess/"
	PrefixSessionIndex  = "sessidx/"
	PrefixSessionLast   = "sesslast/"
	PrefixSessionByPart = "sesspart/"
	PrefixSessionUnique = "sessuniq/"
	PrefixRoute         = "route/"
	PrefixToken         = "tok/"
	PrefixCall          = "call/"    // call/<id> -> call record (JSON)
	PrefixInteraction   = "inter/"   // inter/<session>/<time>/<id> -> kind ("call", "message")
	PrefixMessage       = "msg/"     // msg/<id> -> message record (JSON)
	PrefixSMSQueue      = "smsq/"    // smsq/<id> -> queued outbound message (JSON)
	PrefixDLR           = "dlr/"     // dlr/<carrier>/<carrier message id> -> <message id>/<part>
	PrefixDLRHeld       = "dlrheld/" // dlrheld/<carrier>/<carrier message id> -> receipt ahead of its submit_sm_resp
	PrefixMOPart        = "mopart/"  // mopart/<carrier>/<key>/<seq> -> inbound part awaiting the rest
	// dlrtime/<accepted at: unix ms, 16 hex digits>/<carrier>/<carrier
	// message id> -> <message id>/<part>: the dlr/ rows in the order their
	// parts were accepted, so rows whose receipt never came are found
	// from the oldest without reading the rest.
	PrefixDLRTime = "dlrtime/"
)

// SchemaVersion is the version of the key layout written by this build.
const SchemaVersion = 1

// KeySchema is where the schema version is kept.
var KeySchema = []byte(PrefixMeta + "schema")

// Key joins a prefix and its parts with "/". Parts must not contain "/"
// except the last one, which is read back verbatim by SplitKey.
func Key(prefix string, parts ...string) []byte {
	n := len(prefix)
	for _, p := range parts {
		n += len(p) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	for i, p := range parts {
		if i > 0 {
			b = append(b, '/')
		}
		b = append(b, p...)
	}
	return b
}

// SplitKey removes prefix from key and splits the rest into n parts on "/";
// the last part keeps any further "/". It reports false when key does not
// start with prefix or has fewer parts.
func SplitKey(key []byte, prefix string, n int) ([]string, bool) {
	s := string(key)
	if !strings.HasPrefix(s, prefix) {
		return nil, false
	}
	parts := strings.SplitN(s[len(prefix):], "/", n)
	if len(parts) != n {
		return nil, false
	}
	return parts, true
}
