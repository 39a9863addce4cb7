package sip

import (
	"fmt"
	"strings"

	sipmsg "github.com/emiago/sipgo/sip"
)

// dialog is one leg's dialog state as Veil holds it (RFC 3261 §12): what
// Veil needs to send requests within the dialog and to recognise the
// requests the peer sends. Every header of a request Veil builds comes from
// here or from Veil itself: nothing is copied from the other leg.
//
// A dialog belongs to its call's goroutine; it is not safe for concurrent
// use.
type dialog struct {
	callID    string
	localTag  string
	remoteTag string
	// localURI and remoteURI are the From/To addresses (without tags) as
	// Veil sends them on this leg.
	localURI  sipmsg.Uri
	remoteURI sipmsg.Uri
	localSeq  uint32
	// remoteSeq is the highest CSeq number seen from the peer; lower ones
	// are out of order (RFC 3261 §12.2.2).
	remoteSeq uint32
	// target is the peer's Contact (the remote target, §12.1).
	target sipmsg.Uri
	// routes is the route set, in the order requests carry it.
	routes []sipmsg.Uri
	// via says how Veil sends on this leg: transport and sent-by.
	via viaOrigin
	// contact is Veil's Contact on this leg.
	contact sipmsg.Uri
	// dest, when set, overrides where requests go ("host:port"): the
	// source of the peer's INVITE on a connection-oriented transport,
	// whose Contact may not accept connections.
	dest string
}

// viaOrigin is where Veil sends from on a leg: the transport and the
// listener address it puts in Via and Contact, and the local address the
// transport layer must send from so the peer's answers come back to the
// listener.
type viaOrigin struct {
	transport string // "UDP" or "TCP"
	host      string
	port      int
	laddr     sipmsg.Addr // zero for TCP: sipgo opens or reuses a connection
}

// newVia returns a Via for a new client transaction.
func (o viaOrigin) newVia() *sipmsg.ViaHeader {
	params := sipmsg.NewParams()
	params.Add("branch", sipmsg.GenerateBranch())
	params.Add("rport", "")
	return &sipmsg.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       o.transport,
		Host:            o.host,
		Port:            o.port,
		Params:          params,
	}
}

// stamp marks req to be sent from o's listener.
func (o viaOrigin) stamp(req *sipmsg.Request) {
	req.SetTransport(o.transport)
	if o.laddr.IP != nil {
		o.laddr.Copy(&req.Laddr)
	}
}

// request builds a new request within the dialog (RFC 3261 §12.2.1.1):
// Request-URI the remote target, Route the route set, From/To/Call-ID of
// the dialog, the next local CSeq (except for ACK, which reuses the
// INVITE's number and is given as seq), Veil's Via, Contact and
// Max-Forwards.
func (d *dialog) request(method sipmsg.RequestMethod, seq uint32, body []byte) *sipmsg.Request {
	req := sipmsg.NewRequest(method, d.target)
	req.AppendHeader(d.via.newVia())
	for i := range d.routes {
		req.AppendHeader(&sipmsg.RouteHeader{Address: d.routes[i]})
	}
	from := &sipmsg.FromHeader{Address: d.localURI, Params: sipmsg.NewParams()}
	from.Params.Add("tag", d.localTag)
	req.AppendHeader(from)
	to := &sipmsg.ToHeader{Address: d.remoteURI, Params: sipmsg.NewParams()}
	if d.remoteTag != "" {
		to.Params.Add("tag", d.remoteTag)
	}
	req.AppendHeader(to)
	cid := sipmsg.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	if seq == 0 {
		d.localSeq++
		seq = d.localSeq
	}
	req.AppendHeader(&sipmsg.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sipmsg.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	if method == sipmsg.INVITE || method == sipmsg.UPDATE {
		req.AppendHeader(&sipmsg.ContactHeader{Address: d.contact})
	}
	if body != nil {
		req.AppendHeader(sipmsg.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	d.via.stamp(req)
	if d.dest != "" {
		req.SetDestination(d.dest)
	}
	return req
}

// acceptRequest checks an in-dialog request's CSeq (RFC 3261 §12.2.2): a
// number lower than one already seen is out of order and answered 500.
// ACK and CANCEL reuse their INVITE's number and are not checked.
func (d *dialog) acceptRequest(req *sipmsg.Request) bool {
	if req.IsAck() || req.IsCancel() {
		return true
	}
	cseq := req.CSeq()
	if cseq == nil {
		return false
	}
	if d.remoteSeq != 0 && cseq.SeqNo < d.remoteSeq {
		return false
	}
	d.remoteSeq = cseq.SeqNo
	return true
}

// updateTarget takes a new remote target from a target-refresh request or
// its 2xx (re-INVITE, UPDATE: RFC 3261 §12.2.1.2, §12.2.2).
func (d *dialog) updateTarget(msg headers) {
	if c := contactOf(msg); c != nil {
		d.target = *c
	}
}

// headers is what requests and responses share for reading headers.
type headers interface {
	GetHeader(name string) sipmsg.Header
	GetHeaders(name string) []sipmsg.Header
}

// contactOf returns the URI of msg's first Contact, if it has one usable
// as a remote target.
func contactOf(msg headers) *sipmsg.Uri {
	h := msg.GetHeader("Contact")
	if h == nil {
		return nil
	}
	c, ok := h.(*sipmsg.ContactHeader)
	if !ok || c.Address.Host == "" || c.Address.Wildcard {
		return nil
	}
	u := c.Address
	return &u
}

// recordRoutes returns the Record-Route URIs of msg in header order.
func recordRoutes(msg headers) []sipmsg.Uri {
	var out []sipmsg.Uri
	for _, h := range msg.GetHeaders("Record-Route") {
		switch rr := h.(type) {
		case *sipmsg.RecordRouteHeader:
			out = append(out, rr.Address)
		default:
			// A comma-separated list is parsed into one header per entry by
			// sipgo; anything else is unusable and ignored.
		}
	}
	return out
}

// dialogKey identifies a dialog from a request the peer sent within it:
// Call-ID and Veil's tag, which the peer puts in To (RFC 3261 §12.2.2).
func dialogKey(callID, localTag string) string {
	return callID + "\x00" + localTag
}

// requestDialogKey returns the dialog key of an in-dialog request, or ""
// when it has no To tag or Call-ID.
func requestDialogKey(req *sipmsg.Request) string {
	to, cid := req.To(), req.CallID()
	if to == nil || cid == nil {
		return ""
	}
	tag, ok := to.Params.Get("tag")
	if !ok || tag == "" {
		return ""
	}
	return dialogKey(cid.Value(), tag)
}

// tagOf returns the tag parameter of a From or To header value's params.
func tagOf(params sipmsg.HeaderParams) string {
	tag, _ := params.Get("tag")
	return tag
}

// sipURI builds the sip: URI of user at a carrier address "host:port",
// with a transport parameter for anything but UDP.
func sipURI(user, hostport, transport string) (sipmsg.Uri, error) {
	var u sipmsg.Uri
	s := "sip:" + user + "@" + hostport
	if t := strings.ToLower(transport); t != "" && t != "udp" {
		s += ";transport=" + t
	}
	if err := sipmsg.ParseUri(s, &u); err != nil {
		return u, fmt.Errorf("building URI for %s: %w", hostport, err)
	}
	return u, nil
}
