// Package lpsdes validates and merges LivePerson engagement attributes, the lp_sdes claim: a JSON
// array of at most one {"type":"ctmrinfo","info":{...}} and one
// {"type":"personal","personal":{...}}, with only the fields LivePerson documents. LivePerson
// silently ignores anything else, so we refuse it with a message that names the field: a brand
// learns of a typo at once instead of wondering why agents never see the value.
package lpsdes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"unicode/utf8"
)

// Limits on what a token may carry.
const (
	MaxBytes       = 8 << 10 // the whole claim, as JSON
	MaxStringBytes = 512
	MaxContacts    = 10
)

type kind int

const (
	str kind = iota
	number
	integer
	date
	age
	contacts
	gender
)

var ctmrinfoFields = map[string]kind{
	"ctype": str, "cstatus": str, "balance": number, "currency": str, "customerId": str,
	"socialId": str, "imei": str, "userName": str, "companySize": integer, "companyBranch": str,
	"accountName": str, "role": str, "lastPaymentDate": date, "registrationDate": date,
	"loginStatus": integer,
}

var personalFields = map[string]kind{
	"firstname": str, "lastname": str, "age": age, "contacts": contacts, "gender": gender,
	"company": str, "language": str,
}

var phoneTypes = map[string]bool{
	"HOME": true, "MOBILE": true, "WORK": true, "FAX": true, "MAIN": true, "HOME_FAX": true,
	"WORK_FAX": true, "PAGER": true, "OTHER": true,
}

// SDE is one validated engagement attribute: its type and its content object.
type SDE struct {
	Type   string         // "ctmrinfo" or "personal"
	Fields map[string]any // the "info" or "personal" object, numbers as json.Number
}

// MarshalJSON writes the SDE in LivePerson's shape.
func (s SDE) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"type": s.Type, contentKey(s.Type): s.Fields})
}

func contentKey(typ string) string {
	if typ == "ctmrinfo" {
		return "info"
	}
	return "personal"
}

// Parse decodes and validates an lp_sdes array. Empty input (or JSON null) is no SDEs.
func Parse(raw []byte) ([]SDE, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	if len(raw) > MaxBytes {
		return nil, fmt.Errorf("lp_sdes: %d bytes, more than %d", len(raw), MaxBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("lp_sdes: not JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("lp_sdes: unexpected data after the array")
	}
	return FromValue(v)
}

// FromValue validates an already decoded lp_sdes value (numbers as json.Number or float64).
func FromValue(v any) ([]SDE, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New("lp_sdes: must be a JSON array of SDE objects")
	}
	if len(arr) > 2 {
		return nil, fmt.Errorf("lp_sdes: %d entries, at most 2 (one ctmrinfo, one personal)", len(arr))
	}
	var out []SDE
	seen := map[string]bool{}
	for i, item := range arr {
		path := fmt.Sprintf("lp_sdes[%d]", i)
		obj, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: must be an object", path)
		}
		typ, _ := obj["type"].(string)
		var fields map[string]kind
		switch typ {
		case "ctmrinfo":
			fields = ctmrinfoFields
		case "personal":
			fields = personalFields
		default:
			return nil, fmt.Errorf("%s.type: %q is not an SDE type LivePerson reads from a token; use ctmrinfo or personal", path, obj["type"])
		}
		if seen[typ] {
			return nil, fmt.Errorf("%s: a second %s entry; merge them into one", path, typ)
		}
		seen[typ] = true
		key := contentKey(typ)
		for k := range obj {
			if k != "type" && k != key {
				return nil, fmt.Errorf("%s.%s: unknown member; a %s entry has only type and %s", path, k, typ, key)
			}
		}
		content, ok := obj[key].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s.%s: must be an object", path, key)
		}
		if err := checkObject(path+"."+key, content, fields); err != nil {
			return nil, err
		}
		out = append(out, SDE{Type: typ, Fields: content})
	}
	return out, nil
}

func checkObject(path string, obj map[string]any, fields map[string]kind) error {
	for name, val := range obj {
		k, ok := fields[name]
		if !ok {
			return fmt.Errorf("%s.%s: unknown field; LivePerson ignores it (field names are case-sensitive)", path, name)
		}
		if err := checkValue(path+"."+name, val, k); err != nil {
			return err
		}
	}
	return nil
}

func checkValue(path string, val any, k kind) error {
	switch k {
	case str:
		return checkString(path, val)
	case number:
		if _, ok := asNumber(val); !ok {
			return fmt.Errorf("%s: must be a number", path)
		}
	case integer:
		if !isInteger(val) {
			return fmt.Errorf("%s: must be a whole number", path)
		}
	case date:
		return checkIntObject(path, val, map[string][2]int64{"day": {1, 31}, "month": {1, 12}, "year": {1, 9999}}, true)
	case age:
		return checkIntObject(path, val, map[string][2]int64{"age": {0, 200}, "day": {1, 31}, "month": {1, 12}, "year": {1, 9999}}, false)
	case gender:
		if s, _ := val.(string); s != "MALE" && s != "FEMALE" && s != "OTHER" {
			return fmt.Errorf("%s: must be MALE, FEMALE or OTHER", path)
		}
	case contacts:
		return checkContacts(path, val)
	}
	return nil
}

func checkString(path string, val any) error {
	s, ok := val.(string)
	if !ok {
		return fmt.Errorf("%s: must be a string", path)
	}
	if len(s) > MaxStringBytes || !utf8.ValidString(s) {
		return fmt.Errorf("%s: must be valid UTF-8 of at most %d bytes", path, MaxStringBytes)
	}
	return nil
}

func asNumber(val any) (float64, bool) {
	switch n := val.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}

func isInteger(val any) bool {
	switch n := val.(type) {
	case json.Number:
		_, err := n.Int64()
		return err == nil
	case float64:
		return n == float64(int64(n))
	}
	return false
}

// checkIntObject checks {day,month,year}-style objects: whole numbers within ranges.
func checkIntObject(path string, val any, ranges map[string][2]int64, all bool) error {
	obj, ok := val.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: must be an object with day, month and year", path)
	}
	for name, v := range obj {
		r, ok := ranges[name]
		if !ok {
			return fmt.Errorf("%s.%s: unknown field", path, name)
		}
		n, isNum := asNumber(v)
		if !isNum || !isInteger(v) || int64(n) < r[0] || int64(n) > r[1] {
			return fmt.Errorf("%s.%s: must be a whole number from %d to %d", path, name, r[0], r[1])
		}
	}
	if all {
		for name := range ranges {
			if _, ok := obj[name]; !ok {
				return fmt.Errorf("%s: a date needs day, month and year; %s is missing", path, name)
			}
		}
	}
	return nil
}

func checkContacts(path string, val any) error {
	list, ok := val.([]any)
	if !ok {
		return fmt.Errorf("%s: must be an array", path)
	}
	if len(list) > MaxContacts {
		return fmt.Errorf("%s: %d contacts, at most %d", path, len(list), MaxContacts)
	}
	for i, c := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		obj, ok := c.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: must be an object", p)
		}
		for name, v := range obj {
			switch name {
			case "email", "phone":
				if err := checkString(p+"."+name, v); err != nil {
					return err
				}
			case "phoneType":
				if s, _ := v.(string); !phoneTypes[s] {
					return fmt.Errorf("%s.phoneType: must be one of HOME, MOBILE, WORK, FAX, MAIN, HOME_FAX, WORK_FAX, PAGER, OTHER", p)
				}
			case "address":
				addr, ok := v.(map[string]any)
				if !ok {
					return fmt.Errorf("%s.address: must be an object with country and region", p)
				}
				for an, av := range addr {
					if an != "country" && an != "region" {
						return fmt.Errorf("%s.address.%s: unknown field", p, an)
					}
					if err := checkString(p+".address."+an, av); err != nil {
						return err
					}
				}
			default:
				return fmt.Errorf("%s.%s: unknown field", p, name)
			}
		}
	}
	return nil
}

// Merge overlays request SDEs onto template SDEs: per type, request fields replace template
// fields of the same name. The result keeps ctmrinfo before personal.
func Merge(template, request []SDE) []SDE {
	byType := map[string]map[string]any{}
	for _, list := range [][]SDE{template, request} {
		for _, s := range list {
			if byType[s.Type] == nil {
				byType[s.Type] = map[string]any{}
			}
			maps.Copy(byType[s.Type], s.Fields)
		}
	}
	var out []SDE
	for _, typ := range []string{"ctmrinfo", "personal"} {
		if f, ok := byType[typ]; ok {
			out = append(out, SDE{Type: typ, Fields: f})
		}
	}
	return out
}
