package controllers

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
)

func TestJoinNotes(t *testing.T) {
	t.Parallel()
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	for _, tc := range []struct {
		notes []string
		want  string
	}{
		{[]string{"a"}, "a"},
		{[]string{"a", "b", "c"}, "a; b; c"},
		{[]string{long("a", 600), long("b", 600)}, long("a", 600) + "; and 1 more"},
		{[]string{long("a", 500), long("b", 500), "c"}, long("a", 500) + "; " + long("b", 500) + "; c"},
		{[]string{long("a", 1020), "b"}, long("a", 1024-len("…; and 1 more")) + "…; and 1 more"},
		{[]string{long("é", 600)}, long("é", 510) + "…"}, // 1,023 bytes: no half rune
	} {
		got := joinNotes(tc.notes)
		if got != tc.want {
			t.Errorf("joinNotes(%d notes of %v bytes) = %.40q… (%d bytes), want %.40q… (%d bytes)", len(tc.notes), lens(tc.notes), got, len(got), tc.want, len(tc.want))
		}
	}
}

// FuzzJoinNotes: whatever the notes (they carry user input: annotation values, kids), the
// joined note is valid UTF-8 when they are, and never over the API server's limit.
func FuzzJoinNotes(f *testing.F) {
	f.Add("a", "b", 3)
	f.Add(strings.Repeat("é", 700), "x", 2)
	f.Fuzz(func(t *testing.T, a, b string, n int) {
		notes := []string{a}
		for i := range n % 50 {
			notes = append(notes, fmt.Sprint(b, i))
		}
		got := joinNotes(notes)
		if len(got) > noteLimit {
			t.Fatalf("%d bytes, over %d", len(got), noteLimit)
		}
		if utf8.ValidString(a) && utf8.ValidString(b) && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 from valid notes: %q", got)
		}
	})
}

func lens(s []string) []int {
	var out []int
	for _, x := range s {
		out = append(out, len(x))
	}
	return out
}

// Each reason of a pass is one event naming every note: the recorder would merge them (one
// object, reason and action) into a series that shows only the first.
func TestRecordJoinedOneEventPerReason(t *testing.T) {
	t.Parallel()
	rec := events.NewFakeRecorder(10)
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}}
	recordJoined(rec, obj, []pendingEvent{
		{corev1.EventTypeWarning, "SecretRecovered", "Repair", "key A was revoked"},
		{corev1.EventTypeNormal, "KeyCreated", "Rotate", "made key C"},
		{corev1.EventTypeWarning, "SecretRecovered", "Repair", "key B was revoked"},
	})
	close(rec.Events)
	var got []string
	for e := range rec.Events {
		got = append(got, e)
	}
	want := []string{"Warning SecretRecovered key A was revoked; key B was revoked", "Normal KeyCreated made key C"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// Two unknown annotations in one pass are one Warning naming both; a third added later is
// named alone, and one already named is not named again.
func TestUnknownAnnotationsAreOneEvent(t *testing.T) {
	t.Parallel()
	rec := events.NewFakeRecorder(10)
	w := &annotationWarner{}
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u",
		Annotations: map[string]string{"auth.lpauth.dev/rotation": "now", "auth.lpauth.dev/revokes": "k"}}}
	w.warn(rec, obj, signingKeyAnnotations)
	obj.Annotations["auth.lpauth.dev/adopt"] = "y"
	w.warn(rec, obj, signingKeyAnnotations)
	close(rec.Events)
	var got []string
	for e := range rec.Events {
		got = append(got, e)
	}
	if len(got) != 2 || !strings.Contains(got[0], "Annotations auth.lpauth.dev/revokes, auth.lpauth.dev/rotation are not") ||
		!strings.Contains(got[1], "Annotation auth.lpauth.dev/adopt is not") {
		t.Errorf("events %q, want one naming both, then one naming the third", got)
	}
}

// The API server refuses an event whose note is over 1 KiB (checked against envtest's): every
// controller's recorder cuts it instead.
func TestEventNotesAreCutToTheLimit(t *testing.T) {
	t.Parallel()
	fake := events.NewFakeRecorder(1)
	clippingRecorder{fake}.Eventf(&corev1.Secret{}, nil, corev1.EventTypeWarning, "R", "A", "not written: %s", strings.Repeat("x", 2000))
	note := strings.TrimPrefix(<-fake.Events, "Warning R ")
	if len(note) > noteLimit || !strings.HasPrefix(note, "not written: xxx") || !strings.HasSuffix(note, "…") {
		t.Errorf("note of %d bytes: %.30q…%q", len(note), note, note[max(0, len(note)-5):])
	}
}

// Many unknown annotations at once: every one is named or counted, within the note's limit.
func TestManyUnknownAnnotationsAreCounted(t *testing.T) {
	t.Parallel()
	rec := events.NewFakeRecorder(10)
	obj := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", Annotations: map[string]string{}}}
	for i := range 40 {
		obj.Annotations[fmt.Sprintf("auth.lpauth.dev/%02d-%s", i, strings.Repeat("n", 40))] = "x"
	}
	(&annotationWarner{}).warn(rec, obj, signingKeyAnnotations)
	note := strings.TrimPrefix(<-rec.Events, "Warning UnknownAnnotation ")
	named := strings.Count(note, "auth.lpauth.dev/") - len(signingKeyAnnotations)
	var more int
	if i := strings.Index(note, ", and "); i >= 0 {
		fmt.Sscanf(note[i:], ", and %d more", &more)
	}
	if len(note) > noteLimit || named+more != 40 || more == 0 || !strings.HasSuffix(note, "?") {
		t.Errorf("note of %d bytes names %d and counts %d of 40: %q", len(note), named, more, note)
	}
}
