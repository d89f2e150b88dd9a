package controllers

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// annotationDomain is the prefix of every annotation a user may set on our kinds.
const annotationDomain = "auth.lpauth.dev/"

// Annotations each kind acts on: anything else under annotationDomain is a typo or a request
// for something that does not exist, and would otherwise be ignored without a word.
var (
	signingKeyAnnotations  = []string{v1alpha1.AnnotationRotate, v1alpha1.AnnotationRevoke, v1alpha1.AnnotationAdoptKeys, v1alpha1.AnnotationDeleteAnyway}
	tokenServerAnnotations = []string{v1alpha1.AnnotationRotateCredentials, v1alpha1.AnnotationDeleteAnyway, v1alpha1.AnnotationAdoptSecret}
	clientAnnotations      = []string{v1alpha1.AnnotationConsoleUpdated, v1alpha1.AnnotationGeneratedClientID, v1alpha1.AnnotationAdoptSecret}
)

// unknownAnnotations lists, sorted, the annotations under annotationDomain that are not in known.
func unknownAnnotations(annotations map[string]string, known []string) []string {
	var out []string
	for k := range annotations {
		if !strings.HasPrefix(k, annotationDomain) {
			continue
		}
		found := false
		for _, ok := range known {
			found = found || k == ok
		}
		if !found {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// annotationWarner warns once of each unknown annotation and value, not on every reconcile.
type annotationWarner struct {
	seen sync.Map // "<uid>/<key>=<value>" → struct{}
}

func (w *annotationWarner) warn(rec recorder.EventRecorder, obj client.Object, known []string) {
	if rec == nil {
		return
	}
	var unknown []string
	for _, k := range unknownAnnotations(obj.GetAnnotations(), known) {
		key := fmt.Sprintf("%s/%s=%s", obj.GetUID(), k, obj.GetAnnotations()[k])
		if _, dup := w.seen.LoadOrStore(key, struct{}{}); dup {
			continue
		}
		unknown = append(unknown, k)
	}
	// One event naming them all: one each, the recorder would merge them into a series that
	// names only the first. Past the note's limit they are counted.
	if len(unknown) == 0 {
		return
	}
	subject, verb := "Annotation", "is not one"
	if len(unknown) > 1 {
		subject, verb = "Annotations", "are not ones"
	}
	rest := fmt.Sprintf(" %s this object acts on (ignored); did you mean one of %s?", verb, strings.Join(known, ", "))
	names := joinWithin(unknown, ", ", noteLimit-len(subject)-1-len(rest))
	eventf(rec, obj, corev1.EventTypeWarning, v1alpha1.ReasonUnknownAnnotation, "Check", "%s %s%s", subject, names, rest)
}

// waitGrace is how long an object may wait for another (created in any order, or still
// starting) before the wait is worth a Warning event: a normal apply passes through such
// waits in seconds and must not leave warnings behind; a typo never ends and must be heard.
const waitGrace = 30 * time.Second

// lateWarner warns once about a wait that outlasted waitGrace.
type lateWarner struct {
	warned sync.Map // "<uid>/<reason>/<since>" → struct{}
}

// due reports whether the wait for reason, under way since since (the Ready condition's last
// transition), should be warned about now; it is true once per wait.
func (l *lateWarner) due(obj client.Object, reason string, since time.Time) bool {
	if since.IsZero() || time.Since(since) < waitGrace {
		return false
	}
	_, dup := l.warned.LoadOrStore(fmt.Sprintf("%s/%s/%d", obj.GetUID(), reason, since.Unix()), struct{}{})
	return !dup
}

// warnedAbout reports whether the wait under way since since was warned about already.
func (l *lateWarner) warnedAbout(obj client.Object, reason string, since time.Time) bool {
	_, ok := l.warned.Load(fmt.Sprintf("%s/%s/%d", obj.GetUID(), reason, since.Unix()))
	return ok
}

// waitingSince is when the object's Ready condition took this reason, or zero.
func waitingSince(conds []metav1.Condition, reason string) time.Time {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil && c.Reason == reason {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}
