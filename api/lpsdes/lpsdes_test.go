package lpsdes

import (
	"encoding/json"
	"strings"
	"testing"
)

const full = `[
 {"type":"ctmrinfo","info":{"ctype":"vip","cstatus":"active","balance":-12.5,"currency":"USD",
  "customerId":"c-1","socialId":"s","imei":"1","userName":"u","companySize":50,"companyBranch":"b",
  "accountName":"a","role":"r","lastPaymentDate":{"day":1,"month":2,"year":2026},
  "registrationDate":{"day":31,"month":12,"year":2020},"loginStatus":1}},
 {"type":"personal","personal":{"firstname":"Ada","lastname":"L","age":{"age":36,"year":1990,"month":12,"day":10},
  "contacts":[{"email":"a@example.com","phone":"+1","phoneType":"MOBILE","address":{"country":"US","region":"CA"}}],
  "gender":"FEMALE","company":"c","language":"en-US"}}
]`

func TestParseAcceptsEveryDocumentedField(t *testing.T) {
	sdes, err := Parse([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if len(sdes) != 2 || sdes[0].Type != "ctmrinfo" || sdes[1].Type != "personal" {
		t.Fatalf("got %+v", sdes)
	}
	out, _ := json.Marshal(sdes)
	if !strings.Contains(string(out), `"balance":-12.5`) || !strings.Contains(string(out), `"info":{`) {
		t.Errorf("round trip lost the shape: %s", out)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{}`, "must be a JSON array"},
		{`[1]`, "lp_sdes[0]: must be an object"},
		{`[{"type":"purchase","info":{}}]`, `lp_sdes[0].type: "purchase" is not an SDE type`},
		{`[{"type":"ctmrinfo","info":{}},{"type":"ctmrinfo","info":{}}]`, "a second ctmrinfo entry"},
		{`[{"type":"ctmrinfo","info":{}},{"type":"personal","personal":{}},{"type":"personal","personal":{}}]`, "3 entries, at most 2"},
		{`[{"type":"ctmrinfo","personal":{}}]`, "lp_sdes[0].personal: unknown member"},
		{`[{"type":"ctmrinfo"}]`, "lp_sdes[0].info: must be an object"},
		{`[{"type":"ctmrinfo","info":{"customerID":"x"}}]`, "lp_sdes[0].info.customerID: unknown field"},
		{`[{"type":"ctmrinfo","info":{"balance":"10"}}]`, "lp_sdes[0].info.balance: must be a number"},
		{`[{"type":"ctmrinfo","info":{"companySize":1.5}}]`, "info.companySize: must be a whole number"},
		{`[{"type":"ctmrinfo","info":{"loginStatus":"1"}}]`, "info.loginStatus: must be a whole number"},
		{`[{"type":"ctmrinfo","info":{"ctype":5}}]`, "info.ctype: must be a string"},
		{`[{"type":"ctmrinfo","info":{"lastPaymentDate":"2026-01-01"}}]`, "lastPaymentDate: must be an object with day, month and year"},
		{`[{"type":"ctmrinfo","info":{"lastPaymentDate":{"day":1,"month":13,"year":2026}}}]`, "lastPaymentDate.month: must be a whole number from 1 to 12"},
		{`[{"type":"ctmrinfo","info":{"lastPaymentDate":{"day":1,"month":1}}}]`, "year is missing"},
		{`[{"type":"ctmrinfo","info":{"registrationDate":{"day":1,"month":1,"year":2026,"hour":3}}}]`, "registrationDate.hour: unknown field"},
		{`[{"type":"personal","personal":{"gender":"male"}}]`, "personal.gender: must be MALE, FEMALE or OTHER"},
		{`[{"type":"personal","personal":{"age":{"age":-1}}}]`, "age.age: must be a whole number from 0 to 200"},
		{`[{"type":"personal","personal":{"contacts":{}}}]`, "contacts: must be an array"},
		{`[{"type":"personal","personal":{"contacts":[{"phoneType":"CELL"}]}}]`, "contacts[0].phoneType: must be one of"},
		{`[{"type":"personal","personal":{"contacts":[{"fax":"1"}]}}]`, "contacts[0].fax: unknown field"},
		{`[{"type":"personal","personal":{"contacts":[{"address":{"city":"x"}}]}}]`, "contacts[0].address.city: unknown field"},
		{`[{"type":"personal","personal":{"firstname":"` + strings.Repeat("a", 600) + `"}}]`, "at most 512 bytes"},
		{`[] []`, "unexpected data after the array"},
		{`[` + strings.Repeat(" ", MaxBytes) + `]`, "more than 8192"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%.60s) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestMergeRequestWins(t *testing.T) {
	tmpl, _ := Parse([]byte(`[{"type":"ctmrinfo","info":{"ctype":"vip","cstatus":"gold"}}]`))
	req, _ := Parse([]byte(`[{"type":"personal","personal":{"firstname":"Ada"}},{"type":"ctmrinfo","info":{"cstatus":"platinum"}}]`))
	out, _ := json.Marshal(Merge(tmpl, req))
	want := `[{"info":{"cstatus":"platinum","ctype":"vip"},"type":"ctmrinfo"},{"personal":{"firstname":"Ada"},"type":"personal"}]`
	if string(out) != want {
		t.Errorf("Merge = %s, want %s", out, want)
	}
}

// FuzzParse: untrusted lp_sdes from the issue API must never panic, and whatever it accepts
// must marshal and parse again to the same thing.
func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(`[{"type":"ctmrinfo","info":{"balance":1e400}}]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		sdes, err := Parse(raw)
		if err != nil {
			return
		}
		out, err := json.Marshal(sdes)
		if err != nil {
			t.Fatalf("marshal accepted SDEs: %v", err)
		}
		if len(sdes) == 0 {
			return
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
	})
}
