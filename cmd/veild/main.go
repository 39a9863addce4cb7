// Command veild is the Veil gateway daemon.
//
//	veild [-config FILE]        run (default configs/veil.yaml)
//	veild check [-config FILE]  verify the database of a stopped daemon
//	veild version               print the version
//
// SIGTERM drains (the health check turns 503, in-flight requests finish,
// up to the drain deadline) and exits 0; SIGINT stops at once.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/veilgw/veil/admin"
	"github.com/veilgw/veil/configs"
	"github.com/veilgw/veil/media"
	"github.com/veilgw/veil/routing"
	"github.com/veilgw/veil/sip"
	"github.com/veilgw/veil/smpp"
	"github.com/veilgw/veil/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	if os.Getenv("GOGC") == "" {
		// Calls allocate briskly and the live heap is small: collecting
		// at 5x the live heap instead of 2x roughly halves GC CPU. GOGC
		// in the environment overrides it.
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (args[0] == "version" || args[0] == "check" || args[0] == "run") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("veild "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "configs/veil.yaml", "path of the YAML configuration file")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "veild: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if cmd == "version" {
		fmt.Fprintln(stdout, "veild", versionString())
		return exitOK
	}
	cfg, err := configs.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "veild: %v\n", err)
		return exitUsage
	}
	logger := newLogger(cfg.Log, stderr)
	if cmd == "check" {
		return check(cfg, logger, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, logger); err != nil {
		logger.Error("veild stopped", "err", err)
		return exitFailed
	}
	return exitOK
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

func newLogger(c configs.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func carrierNames(cfg *configs.Config) []string {
	names := make([]string, len(cfg.Carriers))
	for i, c := range cfg.Carriers {
		names[i] = c.Name
	}
	return names
}

// serve runs the daemon until ctx is cancelled (SIGINT: stop now) or
// SIGTERM arrives (drain, then stop).
func serve(ctx context.Context, cfg *configs.Config, logger *slog.Logger) error {
	logger.Info("veild starting", "version", versionString(), "data_dir", cfg.DataDir)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data_dir: %w", err)
	}
	db, err := store.Open(cfg.DataDir, store.Options{Logger: logger})
	if err != nil {
		return lockHint(err)
	}
	defer db.Close()

	rt, err := routing.New(db, routing.Options{
		Carriers:       carrierNames(cfg),
		DefaultTTL:     cfg.Sessions.DefaultTTL,
		MaxTTL:         cfg.Sessions.MaxTTL,
		SweepInterval:  cfg.Sessions.SweepInterval,
		FallbackNumber: cfg.FallbackNumber,
		Logger:         logger.With("component", "routing"),
	})
	if err != nil {
		return err
	}
	token := cfg.Admin.Token()
	switch {
	case token == "":
		logger.Warn("no bootstrap admin token: set the environment variable to use the API", "env", cfg.Admin.TokenEnv)
	case len(token) < 16:
		logger.Warn("the bootstrap admin token is short: use at least 16 random characters", "env", cfg.Admin.TokenEnv)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sms, err := smpp.New(smpp.Options{
		DB:       db,
		Routing:  rt,
		Carriers: cfg.Carriers,
		SMS:      cfg.SMS,
		Registry: reg,
		Logger:   logger.With("component", "smpp"),
	})
	if err != nil {
		return err
	}
	api, err := admin.New(admin.Options{
		Routing:        rt,
		DB:             db,
		BootstrapToken: token,
		MaxBodyBytes:   cfg.Admin.MaxBodyBytes,
		Registry:       reg,
		SMS:            sms,
		Logger:         logger.With("component", "admin"),
	})
	if err != nil {
		return err
	}
	sipSrv, err := newSIP(cfg, rt, reg, logger)
	if err != nil {
		return err
	}
	defer sipSrv.Close()
	ln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	httpSrv := admin.NewHTTPServer(cfg.Admin.Listen, api, cfg.Admin.ReadTimeout, cfg.Admin.WriteTimeout, cfg.Admin.IdleTimeout)
	httpSrv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)

	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	defer signal.Stop(term)

	workCtx, cancelWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Go(func() {
		if err := sipSrv.Serve(workCtx); err != nil {
			errc <- fmt.Errorf("sip server: %w", err)
		}
	})
	wg.Go(func() {
		if err := sms.Run(workCtx); err != nil {
			errc <- fmt.Errorf("sms: %w", err)
		}
	})
	wg.Go(func() {
		if err := rt.Run(workCtx); err != nil {
			errc <- fmt.Errorf("session sweeper: %w", err)
		}
	})
	wg.Go(func() {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("admin server: %w", err)
		}
	})
	logger.Info("veild ready", "admin", ln.Addr().String(), "sip", strings.Join(sipSrv.Addrs(), " "), "carriers", len(cfg.Carriers))

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("SIGINT: stopping")
		httpSrv.Close()
	case <-term:
		logger.Info("SIGTERM: draining", "delay", cfg.Shutdown.DrainDelay, "deadline", cfg.Shutdown.DrainTimeout)
		api.Drain()
		// Keep serving while the health check says 503, so load balancers
		// move traffic away before the listener closes. SIGINT cuts it short.
		delay := time.NewTimer(cfg.Shutdown.DrainDelay)
		select {
		case <-delay.C:
		case <-ctx.Done():
			delay.Stop()
		}
		dctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.DrainTimeout)
		if !sipSrv.Drain(dctx) {
			logger.Warn("drain deadline passed with calls in progress; hanging them up")
		}
		if err := httpSrv.Shutdown(dctx); err != nil {
			logger.Warn("drain deadline passed; closing", "err", err)
			httpSrv.Close()
		}
		cancel()
	case runErr = <-errc:
		httpSrv.Close()
	}
	cancelWork()
	if err := sipSrv.Close(); err != nil {
		logger.Warn("closing sip server", "err", err)
	}
	wg.Wait()
	if err := db.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("closing database: %w", err)
	}
	if runErr == nil {
		logger.Info("veild stopped")
	}
	return runErr
}

// check opens the database read-write (the daemon must be stopped: Pebble
// holds a lock) and reports inconsistencies.
func check(cfg *configs.Config, logger *slog.Logger, stdout, stderr io.Writer) int {
	db, err := store.Open(cfg.DataDir, store.Options{Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "veild check: %v\n", lockHint(err))
		return exitFailed
	}
	defer db.Close()
	problems, err := routing.Check(db)
	if err != nil {
		fmt.Fprintf(stderr, "veild check: %v\n", err)
		return exitFailed
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "veild check: %d problems\n", len(problems))
		return exitFailed
	}
	fmt.Fprintln(stdout, "ok: session records and their indexes agree")
	return exitOK
}

// lockHint explains the error Pebble gives when another process holds the
// database.
func lockHint(err error) error {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w (the database is locked: is another veild running on this data_dir?)", err)
	}
	return err
}

// newSIP builds the SIP side: the media port pool, the B2BUA and the
// server on the configured listeners.
func newSIP(cfg *configs.Config, rt *routing.Service, reg prometheus.Registerer, logger *slog.Logger) (*sip.Server, error) {
	pool, err := media.NewPortPool(media.PortPoolOptions{Min: cfg.Media.PortMin, Max: cfg.Media.PortMax})
	if err != nil {
		return nil, fmt.Errorf("media ports: %w", err)
	}
	ip, err := netip.ParseAddr(cfg.Media.Address)
	if err != nil {
		return nil, fmt.Errorf("media address: %w", err)
	}
	bridges := sip.MediaFunc(func() (sip.Bridge, error) {
		br, err := media.NewBridge(media.BridgeOptions{Pool: pool, IP: ip, MediaTimeout: cfg.Media.MediaTimeout})
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return br, nil
	})
	// sipgo logs some things through its package-level logger: give it
	// the same redaction and rate limit.
	sipmsg.SetDefaultLogger(sip.SipgoLogger(logger.With("component", "sip")))
	sip.TuneSipgoTimers()
	metrics := sip.NewMetrics(reg)
	acl, err := sip.NewTrunkACL(cfg.Carriers)
	if err != nil {
		return nil, err
	}
	b2b, err := sip.NewB2BUA(sip.B2BUAOptions{
		Router:          rt,
		Media:           bridges,
		Carriers:        cfg.Carriers,
		RingTimeout:     cfg.SIP.RingTimeout,
		MaxCallDuration: cfg.SIP.MaxCallDuration,
		Logger:          logger.With("component", "sip"),
		Metrics:         metrics,
	})
	if err != nil {
		return nil, err
	}
	maxCalls := cfg.SIP.MaxCalls
	if maxCalls == 0 {
		maxCalls = maxCallsForFiles()
	}
	maxTCP := cfg.SIP.MaxTCPConns
	if maxTCP == 0 {
		maxTCP = maxTCPConnsForFiles()
	}
	logger.Info("sip call limit", "max_calls", maxCalls, "max_tcp_connections", maxTCP)
	return sip.NewServer(sip.ServerOptions{
		Listen:         cfg.SIP.Listen,
		ACL:            acl,
		Handler:        b2b,
		SocketBuffer:   cfg.SIP.SocketBuffer,
		MaxCalls:       maxCalls,
		MaxTCPConns:    maxTCP,
		TCPIdleTimeout: cfg.SIP.TCPIdleTimeout,
		Metrics:        metrics,
		Logger:         logger.With("component", "sip"),
	})
}

// maxTCPConnsForFiles is the default sip.max_tcp_connections: an eighth
// of the open-file limit, between 16 and 1024, so that connections
// anyone can open never take the files calls and the store need (TCP
// signalling is the margin maxCallsForFiles leaves).
func maxTCPConnsForFiles() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1024
	}
	return min(max(int(rl.Cur)/8, 16), 1024)
}

// maxCallsForFiles is the default sip.max_calls: as many calls as the
// open-file limit allows (Go raised the soft limit to the hard one at
// start). A call holds four media sockets (RTP and RTCP on each leg; SIP
// shares the listeners); 4.5 per call leaves a margin for TCP signalling
// connections, and 1024 files are kept for the store, listeners and the
// API. Running out of files would fail the store's writes too, not just
// new calls.
func maxCallsForFiles() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 100000
	}
	return max((int(rl.Cur)-1024)*2/9, 16)
}
