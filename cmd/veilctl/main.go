// Command veilctl drives Veil's admin API from a shell.
//
//	veilctl tokens create -role admin|reviewer [-name N] | list | revoke -id ID
//	veilctl numbers add -number +E164 -carrier NAME [-capabilities voice,sms] [-reserved] [-fallback +E164]
//	veilctl numbers update -number +E164 [-reserved=true|false] [-fallback +E164]
//	veilctl numbers list | get -number +E164 | delete -number +E164
//	veilctl routes add -prefix +44 -carriers c1,c2 | list | delete -prefix +44
//	veilctl sessions create -a +E164 -b +E164 [-mode voice+sms] [-ttl 1h] [-record] [-unique-name N]
//	veilctl sessions list [-state open] [-participant +E164] [-unique-name N] [-limit 100] [-cursor C]
//	veilctl sessions get -id ID | close -id ID | interactions -id ID
//	veilctl calls get ID (or -id ID)
//	veilctl messages send -from +E164|SENDER -to +E164 -body TEXT | get ID (or -id ID)
//	veilctl carriers list
//
// It reads the API address from VEIL_URL (default http://127.0.0.1:8080)
// and the bearer token from VEIL_TOKEN. Output is the API's JSON.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/veilgw/veil/admin"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `usage: veilctl <resource> <action> [flags]
  tokens   create -role admin|reviewer [-name N] | list | revoke -id tok_...
  numbers  add -number +E164 -carrier NAME [-capabilities voice,sms] [-reserved] [-fallback +E164]
           update -number +E164 [-reserved=true|false] [-fallback +E164]
           list | get -number +E164 | delete -number +E164
  routes   add -prefix +44 -carriers c1,c2 | list | delete -prefix +44
  sessions create -a +E164 -b +E164 [-mode voice|sms|voice+sms] [-ttl 1h] [-record] [-unique-name N] [-proxy +E164]
           list [-state open|closed] [-participant +E164] [-proxy +E164] [-unique-name N] [-limit N] [-cursor C]
           get -id ID | close -id ID | interactions -id ID
  calls    get ID (or -id ID)
  messages send -from +E164|SENDER -to +E164 -body TEXT | get ID (or -id ID)
  carriers list
environment: VEIL_URL (default http://127.0.0.1:8080), VEIL_TOKEN (bearer token)
`

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	base := getenv("VEIL_URL")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		fmt.Fprintf(stderr, "veilctl: VEIL_URL must start with http:// or https:// (got %q)\n", base)
		return 2
	}
	c := &admin.Client{BaseURL: base, Token: getenv("VEIL_TOKEN")}
	if c.Token == "" {
		fmt.Fprintln(stderr, "veilctl: set VEIL_TOKEN to an API token")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := dispatch(ctx, c, args[0], args[1], args[2:], stderr)
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "veilctl: %v\n\n%s", err, usage)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "veilctl: %v\n", err)
		return 1
	}
	if out != nil {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func dispatch(ctx context.Context, c *admin.Client, resource, action string, args []string, stderr io.Writer) (any, error) {
	fs := flag.NewFlagSet(resource+" "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	str := func(name, help string) *string { return fs.String(name, "", help) }
	parse := func(required ...string) error {
		if err := fs.Parse(args); err != nil {
			return usageError{err.Error()}
		}
		if fs.NArg() > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
		}
		for _, r := range required {
			if f := fs.Lookup(r); f == nil || f.Value.String() == "" {
				return usageError{fmt.Sprintf("-%s is required", r)}
			}
		}
		return nil
	}
	switch resource + " " + action {
	case "tokens create":
		role, name := str("role", "admin or reviewer"), str("name", "label")
		if err := parse("role"); err != nil {
			return nil, err
		}
		return c.CreateToken(ctx, admin.CreateTokenRequest{Role: admin.Role(*role), Name: *name})
	case "tokens list":
		if err := parse(); err != nil {
			return nil, err
		}
		l, err := c.ListTokens(ctx)
		return admin.TokenList{Tokens: l}, err
	case "tokens revoke":
		id := str("id", "token id (tok_...)")
		if err := parse("id"); err != nil {
			return nil, err
		}
		return nil, c.RevokeToken(ctx, *id)
	case "numbers get":
		num := str("number", "E.164")
		if err := parse("number"); err != nil {
			return nil, err
		}
		return c.GetNumber(ctx, *num)
	case "numbers add":
		num, carrier, caps, fallback := str("number", "E.164"), str("carrier", "carrier name"), str("capabilities", "voice,sms"), str("fallback", "E.164")
		reserved := fs.Bool("reserved", false, "never allocate automatically")
		if err := parse("number", "carrier"); err != nil {
			return nil, err
		}
		return c.AddNumber(ctx, admin.AddNumberRequest{Number: *num, Carrier: *carrier, Capabilities: splitList(*caps), Reserved: *reserved, FallbackNumber: *fallback})
	case "numbers update":
		num := str("number", "E.164")
		var req admin.UpdateNumberRequest
		fs.Func("reserved", "true or false: take the number out of (or back into) allocation", func(v string) error {
			b, err := strconv.ParseBool(v)
			req.Reserved = &b
			return err
		})
		fs.Func("fallback", "E.164 for out-of-session traffic; empty removes it", func(v string) error {
			req.FallbackNumber = &v
			return nil
		})
		if err := parse("number"); err != nil {
			return nil, err
		}
		if req.Reserved == nil && req.FallbackNumber == nil {
			return nil, usageError{"give -reserved or -fallback"}
		}
		return c.UpdateNumber(ctx, *num, req)
	case "numbers list":
		if err := parse(); err != nil {
			return nil, err
		}
		l, err := c.ListNumbers(ctx)
		return admin.NumberList{Numbers: l}, err
	case "numbers delete":
		num := str("number", "E.164")
		if err := parse("number"); err != nil {
			return nil, err
		}
		return nil, c.DeleteNumber(ctx, *num)
	case "routes add":
		prefix, carriers := str("prefix", "+ and digits"), str("carriers", "comma-separated, in order")
		if err := parse("prefix", "carriers"); err != nil {
			return nil, err
		}
		return c.SetRoute(ctx, admin.RouteRequest{Prefix: *prefix, Carriers: splitList(*carriers)})
	case "routes list":
		if err := parse(); err != nil {
			return nil, err
		}
		l, err := c.ListRoutes(ctx)
		return admin.RouteList{Routes: l}, err
	case "routes delete":
		prefix := str("prefix", "+ and digits")
		if err := parse("prefix"); err != nil {
			return nil, err
		}
		return nil, c.DeleteRoute(ctx, *prefix)
	case "sessions create":
		a, b, mode, uniq, proxy := str("a", "E.164"), str("b", "E.164"), str("mode", "voice, sms or voice+sms"), str("unique-name", "e.g. booking id"), str("proxy", "E.164")
		ttl := fs.Duration("ttl", 0, "lifetime (e.g. 2h); default: the server's")
		record := fs.Bool("record", false, "record calls")
		if err := parse("a", "b"); err != nil {
			return nil, err
		}
		if *ttl < 0 || (*ttl > 0 && *ttl < time.Second) {
			return nil, usageError{"-ttl must be at least 1s"}
		}
		return c.CreateSession(ctx, admin.CreateSessionRequest{
			Participants: []admin.Participant{{Number: *a}, {Number: *b}},
			Mode:         *mode, Record: *record, TTLSeconds: int64(*ttl / time.Second),
			UniqueName: *uniq, ProxyNumber: *proxy,
		})
	case "sessions list":
		state, part, uniq, cursor, proxy := str("state", "open or closed"), str("participant", "E.164"), str("unique-name", ""), str("cursor", "from next_cursor"), str("proxy", "E.164")
		limit := fs.Int("limit", 0, "page size, 1..1000")
		if err := parse(); err != nil {
			return nil, err
		}
		q := url.Values{}
		for k, v := range map[string]string{"state": *state, "participant": *part, "unique_name": *uniq, "cursor": *cursor, "proxy_number": *proxy} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if *limit != 0 {
			q.Set("limit", strconv.Itoa(*limit))
		}
		return c.ListSessions(ctx, q)
	case "sessions get", "sessions close", "sessions interactions":
		id := str("id", "session id")
		if err := parse("id"); err != nil {
			return nil, err
		}
		switch action {
		case "get":
			return c.GetSession(ctx, *id)
		case "interactions":
			l, err := c.ListInteractions(ctx, *id)
			return admin.InteractionList{Interactions: l}, err
		}
		return c.CloseSession(ctx, *id)
	case "calls get", "messages get":
		kind := strings.TrimSuffix(resource, "s")
		id := str("id", kind+" id")
		if err := fs.Parse(args); err != nil {
			return nil, usageError{err.Error()}
		}
		// The id may also be the one argument: veilctl calls get ID.
		switch {
		case fs.NArg() == 1 && *id == "":
			*id = fs.Arg(0)
		case fs.NArg() > 0:
			return nil, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(fs.NArg()-1))}
		}
		if *id == "" {
			return nil, usageError{"give the " + kind + " id"}
		}
		if resource == "messages" {
			return c.GetMessage(ctx, *id)
		}
		return c.GetCall(ctx, *id)
	case "messages send":
		from, to, body := str("from", "proxy number (E.164) or sender id"), str("to", "E.164"), str("body", "the text")
		if err := parse("from", "to", "body"); err != nil {
			return nil, err
		}
		return c.SendMessage(ctx, admin.SendMessageRequest{From: *from, To: *to, Body: *body})
	case "carriers list":
		if err := parse(); err != nil {
			return nil, err
		}
		l, err := c.ListCarriers(ctx)
		return admin.CarrierList{Carriers: l}, err
	}
	return nil, usageError{fmt.Sprintf("unknown command %q", resource+" "+action)}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
