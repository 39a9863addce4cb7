package smpp

import (
	"testing"

	"github.com/linxGnu/gosmpp/data"
)

func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		st   data.CommandStatusType
		want Outcome
	}{
		{data.ESME_ROK, Accepted},
		{data.ESME_RTHROTTLED, Retry},
		{data.ESME_RMSGQFUL, Retry},
		{data.ESME_RSYSERR, Retry},
		{data.ESME_RINVDSTADR, Fail},
		{data.ESME_RINVSRCADR, Fail},
		{data.ESME_RINVMSGLEN, Fail},
		{data.CommandStatusType(0x400), Fail},
	} {
		if got := outcomeOf(tc.st); got != tc.want {
			t.Errorf("outcomeOf(%v) = %d, want %d", tc.st, got, tc.want)
		}
	}
}
