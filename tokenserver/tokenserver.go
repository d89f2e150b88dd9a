// Package tokenserver is the token server's process: it reads one TokenServer, its clients and
// its keys from the cluster (tokenserver/cluster) into snapshots (tokenserver/snapshot) and serves
// LivePerson's endpoints from them (tokenserver/server). The operator deploys it as
// "lpauth-operator tokenserver".
package tokenserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lpauth/lpauth-operator/api/secretset"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/tokenserver/cluster"
	"github.com/lpauth/lpauth-operator/tokenserver/metrics"
	"github.com/lpauth/lpauth-operator/tokenserver/replay"
	"github.com/lpauth/lpauth-operator/tokenserver/server"
	"github.com/lpauth/lpauth-operator/tokenserver/signer"
	"github.com/lpauth/lpauth-operator/tokenserver/snapshot"
)

// Scheme is what the token server reads: the built-in kinds and ours.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1alpha1.AddToScheme(s))
	return s
}

// Run serves one TokenServer's endpoints from the cluster state of its namespace, with the
// command line's flags, until SIGTERM.
func Run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	namespace := fs.String("namespace", os.Getenv("POD_NAMESPACE"), "namespace of the TokenServer (default $POD_NAMESPACE)")
	name := fs.String("token-server", os.Getenv("TOKEN_SERVER"), "name of the TokenServer to serve (default $TOKEN_SERVER)")
	listen := fs.String("listen", ":8080", "address of the endpoints LivePerson and the brand's backend call")
	metricsListen := fs.String("metrics-listen", ":9090", "address of /metrics (Prometheus), kept off the public listener")
	grace := fs.Duration("shutdown-grace", 20*time.Second, "how long in-flight requests may finish after SIGTERM")
	drainDelay := fs.Duration("drain-delay", 0, "after SIGTERM, how long to keep serving while /readyz says 503 and each response closes its connection, before draining (the operator's Deployment sets 5s): clients holding a connection to this server reconnect elsewhere instead of finding it closed under a request")
	opts := zap.Options{}
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *namespace == "" || *name == "" {
		return errors.New("--namespace and --token-server are required (or $POD_NAMESPACE and $TOKEN_SERVER)")
	}
	log := zap.New(zap.UseFlagOptions(&opts))
	ctrl.SetLogger(log)
	// Plain lists rather than client-go's streaming ones (on by default since 1.35): the token
	// server lists a few Secrets by name, and a streamed start at 10,000 clients took 0.5 s to
	// sync and 20 MiB more at its peak than a list (0.3 s; make bench, issue 18). Left as set
	// when the environment says otherwise.
	if _, set := os.LookupEnv(watchListEnv); !set {
		_ = os.Setenv(watchListEnv, "false")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("finding the cluster: %w", err)
	}
	ts, err := Start(ctx, cfg, *namespace, *name, log)
	if err != nil {
		return err
	}
	metricsSrv := server.NewHTTPServer(*metricsListen, ts.Metrics.Handler())
	go func() {
		if err := metricsSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "Metrics listener stopped")
		}
	}()
	defer metricsSrv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *listen, err)
	}
	return ts.Serve(ctx, server.NewHTTPServer(*listen, ts.Handler), ln, *drainDelay, *grace, log)
}

// Server is a started token server: its handler, its metrics, and whether it is draining
// (its /readyz then answers 503, so a load balancer that follows readiness stops sending to it).
type Server struct {
	Handler  http.Handler
	Metrics  *metrics.Metrics
	draining atomic.Bool
}

// Start reads the TokenServer, starts the informers that keep its snapshot current, and returns
// the server. The informers stop with ctx.
func Start(ctx context.Context, cfg *rest.Config, namespace, name string, log logr.Logger) (*Server, error) {
	scheme := Scheme()
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ts := &v1alpha1.TokenServer{}
	if err := direct.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, ts); err != nil {
		return nil, fmt.Errorf("reading TokenServer %s/%s: %w", namespace, name, err)
	}
	store, err := replayStore(ctx, direct, ts)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	store = m.ReplayStore(ctx, store, replayCheckEvery)
	holder := &snapshot.Holder{}
	log.Info("Starting the token server", "issuer", ts.Spec.Issuer, "rs256Signer", signer.Implementation)
	src := &cluster.Source{Namespace: namespace, TokenServer: name, Holder: holder, Log: log.WithName("snapshot"), OnBuild: m.OnBuild}
	if err := src.Start(ctx, cfg, scheme); err != nil {
		return nil, err
	}
	s := &Server{Metrics: m}
	s.Handler = server.Handler(server.Config{Issuer: ts.Spec.Issuer, Source: holder, Replay: store, Log: log.WithName("http"), Metrics: m, Draining: s.draining.Load})
	return s, nil
}

// Serve runs srv on ln until ctx ends. Then it drains: for drainDelay it keeps serving with
// /readyz at 503 and closes each connection after its response (so clients reconnect, through
// the load balancer, to a server that stays), then lets in-flight requests finish within grace.
func (s *Server) Serve(ctx context.Context, srv *http.Server, ln net.Listener, drainDelay, grace time.Duration, log logr.Logger) error {
	// While draining, each response closes its connection: the client's next request opens a new
	// one, which the load balancer sends to a server that stays. Idle connections are left open
	// until the end of the drain delay (closing them now races with a request being sent on them).
	next := srv.Handler
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("Serving", "address", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("serving on %s: %w", srv.Addr, err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	if drainDelay > 0 {
		log.Info("Stopping: out of rotation, still serving", "for", drainDelay)
		time.Sleep(drainDelay)
	}
	log.Info("Shutting down; draining in-flight requests", "grace", grace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// watchListEnv is client-go's switch for streaming lists, read once, at its first request.
const watchListEnv = "KUBE_FEATURE_WatchListClient"

// replayCheckEvery is how often the replay store is checked for the metrics: within one
// Prometheus scrape interval of the usual 30 s.
const replayCheckEvery = 15 * time.Second

// redisURLWait is how long a starting token server waits for the Redis URL in its secret set.
const redisURLWait = 30 * time.Second

// replayStore picks the store the TokenServer asks for: Redis (its URL from the secret set the
// operator keeps; the token server cannot read the brand's Secret itself) or memory.
func replayStore(ctx context.Context, c client.Client, ts *v1alpha1.TokenServer) (replay.Store, error) {
	rs := ts.Spec.ReplayStore
	if rs == nil || rs.Type != v1alpha1.ReplayStoreRedis || rs.Redis == nil {
		return replay.NewMemory(1_000_000, nil), nil
	}
	name := secretset.Name(ts.Name)
	// A pod may start moments before the operator wrote the set: wait a little rather than
	// exit and be restarted with a back-off.
	var url string
	var err error
	for deadline := time.Now().Add(redisURLWait); ; {
		set := &corev1.Secret{}
		if err = c.Get(ctx, client.ObjectKey{Namespace: ts.Namespace, Name: name}, set); err == nil {
			if url = secretset.RedisURL(set.Data); url != "" {
				return replay.NewRedis(url, "lpauth:"+ts.Namespace+":"+ts.Name+":")
			}
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s for the Redis URL: %w", name, err)
	}
	ref := rs.Redis.AddressSecretRef
	return nil, fmt.Errorf("no Redis URL in Secret %s after %s: the operator copies it from Secret %s key %q (check the TokenServer's status)", name, redisURLWait, ref.Name, ref.Key)
}
