package smpp

import "github.com/linxGnu/gosmpp/data"

// Outcome is what the queue does with a submit_sm after its response.
type Outcome int

// Outcomes of a submit_sm response status.
const (
	// Accepted: the SMSC took the part; its message id is stored.
	Accepted Outcome = iota
	// Retry: a transient refusal (throttling, queue full, system error);
	// the part is submitted again after a backoff.
	Retry
	// Fail: a permanent refusal; the message ends as failed.
	Fail
)

// outcomeOf classifies a submit_sm_resp command_status (SMPP 3.4 §5.1.3).
// Throttling and queue-full are the transient errors the issue names;
// ESME_RSYSERR and ESME_RSUBMITFAIL are retried too, since carriers use them
// for passing faults, and a message is better late than silently lost.
func outcomeOf(st data.CommandStatusType) Outcome {
	switch st {
	case data.ESME_ROK:
		return Accepted
	case data.ESME_RTHROTTLED, data.ESME_RMSGQFUL, data.ESME_RSYSERR, data.ESME_RSUBMITFAIL, data.ESME_RX_T_APPN:
		return Retry
	default:
		return Fail
	}
}
