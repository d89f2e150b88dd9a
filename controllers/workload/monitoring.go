package workload

import (
	"maps"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// WantsServiceMonitor reports whether spec.monitoring asks for a ServiceMonitor.
func WantsServiceMonitor(ts *v1alpha1.TokenServer) bool {
	m := ts.Spec.Monitoring
	return m != nil && m.ServiceMonitor != nil && m.ServiceMonitor.Enabled
}

// ServiceMonitor has the Prometheus Operator scrape the metrics port of the token server's
// Service (each pod: the token server's metrics are per process); nil when not asked for. The
// brand's labels come first, so they cannot take the labels the operator's cache selects on.
func ServiceMonitor(ts *v1alpha1.TokenServer) *monitoringv1.ServiceMonitor {
	if !WantsServiceMonitor(ts) {
		return nil
	}
	spec := ts.Spec.Monitoring.ServiceMonitor
	om := meta(ts, Name(ts))
	om.Labels = maps.Clone(spec.Labels)
	if om.Labels == nil {
		om.Labels = map[string]string{}
	}
	maps.Copy(om.Labels, Labels(ts))
	return &monitoringv1.ServiceMonitor{
		TypeMeta:   metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.ServiceMonitorsKind},
		ObjectMeta: om,
		Spec: monitoringv1.ServiceMonitorSpec{
			Selector: metav1.LabelSelector{MatchLabels: SelectorLabels(ts)},
			Endpoints: []monitoringv1.Endpoint{{
				Port:     "metrics",
				Path:     "/metrics",
				Interval: monitoringv1.Duration(spec.Interval),
			}},
		},
	}
}
