package smpp

import "github.com/prometheus/client_golang/prometheus"

// metrics are the SMS adapter's Prometheus series. Labels are bounded:
// carrier names come from the configuration.
type metrics struct {
	bindUp    *prometheus.GaugeVec
	submits   *prometheus.CounterVec
	responses *prometheus.CounterVec
	receipts  *prometheus.CounterVec
	inbound   *prometheus.CounterVec
	messages  *prometheus.CounterVec
	nacks     *prometheus.CounterVec

	partsExpired    *prometheus.CounterVec
	receiptsMissing *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		bindUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "veil_smpp_bind_up", Help: "1 while the carrier's SMPP bind is bound.",
		}, []string{"carrier"}),
		submits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_smpp_submits_total", Help: "submit_sm sent, by carrier (resubmits included).",
		}, []string{"carrier"}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_smpp_submit_responses_total", Help: "submit_sm responses by carrier and outcome (accepted, accepted_without_id, retry, failed).",
		}, []string{"carrier", "outcome"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_smpp_receipts_total", Help: "Delivery receipts by carrier and result (matched, held before their submit_sm_resp, unmatched: dropped after waiting 10 min for it, unreadable).",
		}, []string{"carrier", "result"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_smpp_inbound_total", Help: "Inbound (MO) messages by carrier and result.",
		}, []string{"carrier", "result"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_sms_messages_total", Help: "Outbound messages entering each status.",
		}, []string{"direction", "status"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_smpp_generic_nacks_total", Help: "PDUs from the SMSC answered generic_nack (undecodable or unknown).",
		}, []string{"carrier"}),
		partsExpired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_sms_parts_expired_total", Help: "Outbound parts given up because the carrier did not accept them within sms.validity (their message ends expired).",
		}, []string{"carrier"}),
		receiptsMissing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "veil_smpp_receipts_missing_total", Help: "Accepted parts with no final receipt within sms.receipt_wait (their receipt index row deleted; a later receipt is not matched).",
		}, []string{"carrier"}),
	}
	if reg != nil {
		reg.MustRegister(m.bindUp, m.submits, m.responses, m.receipts, m.inbound, m.messages, m.nacks, m.partsExpired, m.receiptsMissing)
	}
	return m
}
