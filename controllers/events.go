package controllers

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

// noteLimit is the longest note the API server accepts in an events.k8s.io Event (1 KiB); a
// longer one is refused, and the event lost with only a log line.
const noteLimit = 1024

// pendingEvent is one event a pass means to record.
type pendingEvent struct {
	kind, reason, action, note string
}

// recordJoined records a pass's events, one per kind, reason and action, with their notes
// joined in order. The recorder merges events of one object that differ only in their note into
// a series that keeps the first note: two repairs of one pass recorded apart would name only
// the first.
func recordJoined(rec recorder.EventRecorder, obj runtime.Object, events []pendingEvent) {
	if rec == nil {
		return
	}
	type key struct{ kind, reason, action string }
	var order []key
	notes := map[key][]string{}
	for _, e := range events {
		k := key{e.kind, e.reason, e.action}
		if _, ok := notes[k]; !ok {
			order = append(order, k)
		}
		notes[k] = append(notes[k], e.note)
	}
	for _, k := range order {
		rec.Eventf(obj, nil, k.kind, k.reason, k.action, "%s", joinNotes(notes[k]))
	}
}

// joinNotes joins notes with "; " within noteLimit bytes.
func joinNotes(notes []string) string { return joinWithin(notes, "; ", noteLimit) }

// joinWithin joins items with sep within limit bytes. Items that do not fit are counted
// ("; and 2 more"), never cut, except a first item too long alone, which is cut ("…").
func joinWithin(items []string, sep string, limit int) string {
	andMore := func(n int) string {
		if n == 0 {
			return ""
		}
		return fmt.Sprintf("%sand %d more", sep, n)
	}
	var b strings.Builder
	for i, n := range items {
		s := sep
		if i == 0 {
			s = ""
		}
		// Room is kept, after each item, for saying how many do not fit after it.
		if b.Len()+len(s)+len(n)+len(andMore(len(items)-i-1)) <= limit {
			b.WriteString(s + n)
			continue
		}
		if i == 0 {
			rest := andMore(len(items) - 1)
			return clipNote(n, limit-len(rest)) + rest
		}
		b.WriteString(andMore(len(items) - i))
		break
	}
	return b.String()
}

// clipNote cuts s to at most limit bytes, on a rune boundary, ending it with "…".
func clipNote(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const ellipsis = "…"
	cut := limit - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// clippingRecorder keeps every note within noteLimit, cut with "…": a longer note (a long
// error, a list of names) would have the API server refuse the whole event.
type clippingRecorder struct{ recorder.EventRecorder }

func (r clippingRecorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.EventRecorder.Eventf(regarding, related, eventtype, reason, action, "%s", clipNote(fmt.Sprintf(note, args...), noteLimit))
}

func (r clippingRecorder) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string, eventtype, reason, action, note string, args ...any) {
	r.EventRecorder.AnnotatedEventf(regarding, related, annotations, eventtype, reason, action, "%s", clipNote(fmt.Sprintf(note, args...), noteLimit))
}
