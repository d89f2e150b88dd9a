package controllers

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
	"github.com/lpauth/lpauth-operator/controllers/workload"
)

// setServerStatus writes a TokenServer's status from what the reconcile found: its Deployment
// (nil when not created), whether its SigningKey has an Active key, and the reconcile's error.
// Available mirrors the Deployment; Ready also needs the reconcile to have succeeded and a key.
func setServerStatus(ts *v1alpha1.TokenServer, d *appsv1.Deployment, keyReady bool, reason string, err error) {
	gen := ts.Generation
	ts.Status.ObservedGeneration = gen
	ts.Status.Endpoints = serverEndpoints(ts.Spec.Issuer)

	available := metav1.Condition{Type: v1alpha1.ConditionAvailable, ObservedGeneration: gen,
		Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonDeploymentProgressing, Message: "The token-server Deployment has no available replica yet"}
	ts.Status.ReadyReplicas = 0
	if d != nil && d.Name != "" {
		ts.Status.ReadyReplicas = d.Status.ReadyReplicas
		if c := deploymentCondition(d, appsv1.DeploymentAvailable); c != nil && c.Status == corev1.ConditionTrue && d.Status.AvailableReplicas > 0 {
			available.Status, available.Reason = metav1.ConditionTrue, v1alpha1.ReasonDeploymentAvailable
			available.Message = fmt.Sprintf("%d of %d replicas available", d.Status.AvailableReplicas, workload.Replicas(ts))
		} else if c := deploymentCondition(d, appsv1.DeploymentProgressing); c != nil && c.Status == corev1.ConditionFalse {
			available.Reason, available.Message = v1alpha1.ReasonDeploymentUnavailable, "The Deployment is not progressing: "+c.Message
		}
	}
	meta.SetStatusCondition(&ts.Status.Conditions, available)

	ready := metav1.Condition{Type: v1alpha1.ConditionReady, ObservedGeneration: gen}
	switch {
	case err != nil:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, reason, err.Error()
	case !keyReady:
		ready.Status, ready.Reason = metav1.ConditionFalse, v1alpha1.ReasonSigningKeyNotFound
		ready.Message = fmt.Sprintf("SigningKey %q is missing or has no Active key yet: the token server cannot sign", ts.Spec.SigningKeyRef.Name)
	case available.Status != metav1.ConditionTrue:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, available.Reason, available.Message
	default:
		ready.Status, ready.Reason = metav1.ConditionTrue, v1alpha1.ReasonReconciled
		ready.Message = "Serving " + ts.Spec.Issuer
	}
	meta.SetStatusCondition(&ts.Status.Conditions, ready)
}

// setBrandingCondition reports whether spec.login's branding is applied; absent when there is
// none to apply. Cosmetic: Ready does not depend on it.
func setBrandingCondition(ts *v1alpha1.TokenServer, problem string, invalid bool) {
	if ts.Spec.Login == nil || ts.Spec.Login.BrandingConfigMapRef == nil {
		meta.RemoveStatusCondition(&ts.Status.Conditions, v1alpha1.ConditionBrandingApplied)
		return
	}
	c := metav1.Condition{Type: v1alpha1.ConditionBrandingApplied, ObservedGeneration: ts.Generation,
		Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled, Message: "The login and error pages use the branding ConfigMap"}
	if problem != "" {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonConfigMapNotFound, problem
		if invalid {
			c.Reason = v1alpha1.ReasonInvalidBranding
		}
	}
	meta.SetStatusCondition(&ts.Status.Conditions, c)
}

// setServiceMonitorCondition reports whether the ServiceMonitor spec.monitoring asks for is
// applied (problem says why not); absent when none is asked for. Ready does not depend on it.
func setServiceMonitorCondition(ts *v1alpha1.TokenServer, problem monitoringProblem) {
	if !workload.WantsServiceMonitor(ts) {
		meta.RemoveStatusCondition(&ts.Status.Conditions, v1alpha1.ConditionServiceMonitorReady)
		return
	}
	c := metav1.Condition{Type: v1alpha1.ConditionServiceMonitorReady, ObservedGeneration: ts.Generation,
		Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled, Message: "ServiceMonitor " + workload.Name(ts) + " has Prometheus scrape the metrics port"}
	if problem.message != "" {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, problem.reason, problem.message
	}
	meta.SetStatusCondition(&ts.Status.Conditions, c)
}

// setIssuerCondition: IssuerUnique is False while another TokenServer has the same issuer.
func setIssuerCondition(ts *v1alpha1.TokenServer, problem string) {
	c := metav1.Condition{Type: v1alpha1.ConditionIssuerUnique, ObservedGeneration: ts.Generation,
		Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonReconciled, Message: "No other TokenServer serves " + ts.Spec.Issuer}
	if problem != "" {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, v1alpha1.ReasonIssuerConflict, problem
	}
	meta.SetStatusCondition(&ts.Status.Conditions, c)
}

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}
