package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// consoleUpdateRequired is 1 for each PEM-mode client whose LivePerson console must be given a
// key (reason ConsoleKeyOutdated: tokens fail now; NewKeyPending: rotation waits), for an alert
// before LivePerson's logins fail or while they do.
var consoleUpdateRequired = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "lpauth_operator_console_update_required",
	Help: "1 while a PEM-mode LivePersonAuthClient needs its LivePerson console updated (by reason), else absent.",
}, []string{"namespace", "name", "reason"})

func init() { metrics.Registry.MustRegister(consoleUpdateRequired) }
