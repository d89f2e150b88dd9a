package controllers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The operator's metrics, set in this one place from the status a reconcile leaves, never from
// a memory of events: an operator that restarts (or a new leader) exports the same series once
// its first reconciles ran, and the series of an object go with it. Labels are object names,
// states and condition reasons: bounded by the objects, never a key or a secret.

// consoleUpdateRequired is 1 for each PEM-mode client whose LivePerson console must be given a
// key (reason ConsoleKeyOutdated: tokens fail now; NewKeyPending: rotation waits), for an alert
// before LivePerson's logins fail or while they do.
var consoleUpdateRequired = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "lpauth_operator_console_update_required",
	Help: "1 while a PEM-mode LivePersonAuthClient needs its LivePerson console updated (by reason), else absent.",
}, []string{"namespace", "name", "reason"})

// consolePendingSince says since when, so an alert can compare the wait with the SigningKey's
// publishAhead (joined on namespace and signingkey).
var consolePendingSince = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "lpauth_operator_console_update_pending_since_timestamp_seconds",
	Help: "Since when a PEM-mode LivePersonAuthClient has needed its LivePerson console updated (its ConsoleUpdateRequired condition turned True), else absent.",
}, []string{"namespace", "name", "signingkey"})

var skLabels = []string{"namespace", "signingkey"}

var (
	activeKeyActivated = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_signingkey_active_key_activated_timestamp_seconds",
		Help: "When the SigningKey's Active key began signing (its age is time() minus this); absent without an Active key.",
	}, skLabels)
	nextRotation = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_signingkey_next_rotation_timestamp_seconds",
		Help: "When the SigningKey's Next key is planned to become Active (status.nextRotationTime); absent while rotation is paused.",
	}, skLabels)
	nextPublished = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_signingkey_next_key_published",
		Help: "1 when the SigningKey publishes a Next key (in the JWKS before it signs), else 0.",
	}, skLabels)
	nextPublishedAt = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_signingkey_next_key_published_timestamp_seconds",
		Help: "When the SigningKey's Next key was created and published; absent without a Next key.",
	}, skLabels)
	publishAhead = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_signingkey_publish_ahead_seconds",
		Help: "The SigningKey's spec.rotation.publishAhead: how long a new key is published before it signs.",
	}, skLabels)
	// rotatedEarlyUntil is set while the Rotating condition says RotatedBeforePublishAhead: the
	// Active key began signing before it had been published for publishAhead (a forced rotation,
	// a revoked or lost Active key), so relying parties that cached the JWKS may not know it yet.
	// The value is when that window ends (the key's activation plus publishAhead, as the
	// condition says), so an alert on it resolves on time even before the next reconcile.
	rotatedEarlyUntil = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_signingkey_rotated_early_until_timestamp_seconds",
		Help: "While the SigningKey's Active key signs without having been published for publishAhead (Rotating reason RotatedBeforePublishAhead): until when relying parties that cached the JWKS may not know it (its activation plus publishAhead); else absent.",
	}, skLabels)
	keysByState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_signingkey_keys",
		Help: "Keys the SigningKey's status lists, by state (Next, Active, Retired).",
	}, []string{"namespace", "signingkey", "state"})
)

// The secret set: how long a change takes to compile and write (the part of a client's wait
// for the token server that grows with the number of clients), by what was written — the
// overlay of recent changes, a fold of it into the shards, or nothing — and the bytes each
// wrote (what every token server then reads again), its shards and its size, for capacity
// planning (SecretSetFull comes at 16 shards of ~900 KiB).
var (
	setLabels       = []string{"namespace", "tokenserver"}
	setWriteLabels  = []string{"namespace", "tokenserver", "kind"}
	secretSetWrites = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "lpauth_operator_secret_set_write_duration_seconds",
		Help:    "Time to compile a TokenServer's secret set and write what changed, by kind: overlay (the recent changes only), fold (the shards rewritten, then the overlay emptied) or none (nothing changed).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, setWriteLabels)
	secretSetWrittenBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lpauth_operator_secret_set_written_bytes_total",
		Help: "Bytes of secret set Secrets written, by kind (overlay, fold).",
	}, setWriteLabels)
	secretSetShards = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_secret_set_shards",
		Help: "Secrets the TokenServer's secret set is split into (at most 16).",
	}, setLabels)
	secretSetBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_secret_set_bytes",
		Help: "Bytes of the TokenServer's secret set, all shards (each shard holds at most ~900 KiB).",
	}, setLabels)
	secretSetRecentBytes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "lpauth_operator_secret_set_recent_bytes",
		Help: "Bytes of the TokenServer's overlay of recent client changes (folded into the shards past 64 KiB or after a minute).",
	}, setLabels)
)

// setWrite is what one reconcile of a set did.
type setWrite struct {
	kind                   string // overlay, fold or none
	shards, bytes, recent  int    // the set's shards and bytes, the overlay's bytes
	recentBytes, foldBytes int    // bytes written to the overlay and, folding, to the shards
	took                   time.Duration
}

// observeSecretSet records a compile and write of ts's set.
func observeSecretSet(ts types.NamespacedName, w setWrite) {
	secretSetWrites.WithLabelValues(ts.Namespace, ts.Name, w.kind).Observe(w.took.Seconds())
	if w.recentBytes > 0 {
		secretSetWrittenBytes.WithLabelValues(ts.Namespace, ts.Name, "overlay").Add(float64(w.recentBytes))
	}
	if w.foldBytes > 0 {
		secretSetWrittenBytes.WithLabelValues(ts.Namespace, ts.Name, "fold").Add(float64(w.foldBytes))
	}
	secretSetShards.WithLabelValues(ts.Namespace, ts.Name).Set(float64(w.shards))
	secretSetBytes.WithLabelValues(ts.Namespace, ts.Name).Set(float64(w.bytes))
	secretSetRecentBytes.WithLabelValues(ts.Namespace, ts.Name).Set(float64(w.recent))
}

// forgetSecretSet drops the series of a TokenServer that is gone.
func forgetSecretSet(ts types.NamespacedName) {
	for _, v := range []*prometheus.MetricVec{secretSetWrites.MetricVec, secretSetWrittenBytes.MetricVec, secretSetShards.MetricVec, secretSetBytes.MetricVec, secretSetRecentBytes.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"namespace": ts.Namespace, "tokenserver": ts.Name})
	}
}

var signingKeyGauges = []*prometheus.GaugeVec{activeKeyActivated, nextRotation, nextPublished, nextPublishedAt, publishAhead, rotatedEarlyUntil, keysByState}

func init() {
	metrics.Registry.MustRegister(consoleUpdateRequired, consolePendingSince, secretSetWrites, secretSetWrittenBytes, secretSetShards, secretSetBytes, secretSetRecentBytes)
	for _, g := range signingKeyGauges {
		metrics.Registry.MustRegister(g)
	}
}

// observeSigningKey exports what sk's status says; called after each reconcile's status write.
func observeSigningKey(sk *v1alpha1.SigningKey) {
	forgetSigningKey(types.NamespacedName{Namespace: sk.Namespace, Name: sk.Name})
	ns, name := sk.Namespace, sk.Name
	count := map[v1alpha1.KeyState]int{v1alpha1.KeyNext: 0, v1alpha1.KeyActive: 0, v1alpha1.KeyRetired: 0}
	next := 0.0
	early := meta.FindStatusCondition(sk.Status.Conditions, v1alpha1.ConditionRotating)
	for _, k := range sk.Status.Keys {
		count[k.State]++
		switch {
		case k.State == v1alpha1.KeyActive && k.ActivatesAt != nil:
			activeKeyActivated.WithLabelValues(ns, name).Set(unix(k.ActivatesAt.Time))
			if early != nil && early.Status == metav1.ConditionTrue && early.Reason == v1alpha1.ReasonRotationEarly {
				rotatedEarlyUntil.WithLabelValues(ns, name).Set(unix(k.ActivatesAt.Add(sk.Spec.Rotation.PublishAhead.Duration)))
			}
		case k.State == v1alpha1.KeyNext:
			next = 1
			nextPublishedAt.WithLabelValues(ns, name).Set(unix(k.CreatedAt.Time))
		}
	}
	for state, n := range count {
		keysByState.WithLabelValues(ns, name, string(state)).Set(float64(n))
	}
	nextPublished.WithLabelValues(ns, name).Set(next)
	publishAhead.WithLabelValues(ns, name).Set(sk.Spec.Rotation.PublishAhead.Seconds())
	if t := sk.Status.NextRotationTime; t != nil {
		nextRotation.WithLabelValues(ns, name).Set(unix(t.Time))
	}
}

// forgetSigningKey drops the series of a SigningKey that is gone.
func forgetSigningKey(key types.NamespacedName) {
	for _, g := range signingKeyGauges {
		g.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "signingkey": key.Name})
	}
}

// observeConsole exports whether PEM-mode client c waits for a console update, and since when;
// skName is the SigningKey it signs with.
func observeConsole(c *v1alpha1.LivePersonAuthClient, skName string) {
	forgetConsole(types.NamespacedName{Namespace: c.Namespace, Name: c.Name})
	cond := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionConsoleUpdateRequired)
	if cond == nil || cond.Status != metav1.ConditionTrue {
		return
	}
	consoleUpdateRequired.WithLabelValues(c.Namespace, c.Name, cond.Reason).Set(1)
	consolePendingSince.WithLabelValues(c.Namespace, c.Name, skName).Set(unix(cond.LastTransitionTime.Time))
}

// forgetConsole drops the series of a client that is gone.
func forgetConsole(key types.NamespacedName) {
	for _, g := range []*prometheus.GaugeVec{consoleUpdateRequired, consolePendingSince} {
		g.DeletePartialMatch(prometheus.Labels{"namespace": key.Namespace, "name": key.Name})
	}
}

func unix(t time.Time) float64 { return float64(t.Unix()) }
