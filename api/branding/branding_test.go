package branding_test

import (
	"reflect"
	"testing"

	"github.com/lpauth/lpauth-operator/api/branding"
)

// TestDefaultTextFillsWhatTheBrandLeavesOut: every sentence has an English default, and a
// brand's own sentence replaces only its field.
func TestDefaultTextFillsWhatTheBrandLeavesOut(t *testing.T) {
	t.Parallel()
	d := reflect.ValueOf(branding.DefaultText)
	for i := range d.NumField() {
		if d.Field(i).String() == "" {
			t.Errorf("DefaultText.%s is empty", d.Type().Field(i).Name)
		}
	}
	want := branding.DefaultText
	want.SignInButton = "Se connecter"
	if got := (branding.Text{SignInButton: "Se connecter"}).OrDefault(); got != want {
		t.Errorf("OrDefault: got %+v, want %+v", got, want)
	}
	if got := (branding.Branding{}).Text.OrDefault(); got != branding.DefaultText {
		t.Errorf("no branding: got %+v, want DefaultText", got)
	}
}

// TestParseReportsEveryRefusal: each refused value and unknown key is named once, and what is
// valid is kept.
func TestParseReportsEveryRefusal(t *testing.T) {
	t.Parallel()
	b, errs := branding.Parse(map[string]string{"title": "Brand", "primaryColor": "red", "dir": "up", "colour": "#fff"})
	if b.Title != "Brand" || b.PrimaryColor != "" || b.Dir != "" {
		t.Errorf("got %+v, want the title only", b)
	}
	if len(errs) != 3 {
		t.Errorf("got %v, want primaryColor, dir and the unknown key", errs)
	}
}
