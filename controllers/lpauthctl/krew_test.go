package lpauthctl_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/lpauth/lpauth-operator/controllers/testenv"
)

// krewPlugin is the part of krew's Plugin (index.krew.googlecontainertools.github.com
// v1alpha2) the manifest uses; parsed strictly, so a misspelt field fails here, not in krew.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string         `json:"version"`
		Homepage         string         `json:"homepage"`
		ShortDescription string         `json:"shortDescription"`
		Description      string         `json:"description"`
		Caveats          string         `json:"caveats"`
		Platforms        []krewPlatform `json:"platforms"`
	} `json:"spec"`
}

type krewPlatform struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Files  []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"files"`
	Bin string `json:"bin"`
}

func TestTheKrewManifestIsAPluginKrewAccepts(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "krew", "lpauth.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p krewPlugin
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		t.Fatalf("config/krew/lpauth.yaml: %v", err)
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" || p.Metadata.Name != "lpauth" {
		t.Errorf("apiVersion %q, kind %q, name %q: want a krew v1alpha2 Plugin named lpauth", p.APIVersion, p.Kind, p.Metadata.Name)
	}
	// krew's own rules: a semver version with a v, a short description, https URIs, sha256 as
	// 64 lowercase hex digits, at least one file per platform.
	if !regexp.MustCompile(`^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(p.Spec.Version) {
		t.Errorf("spec.version %q is not a semver starting with v", p.Spec.Version)
	}
	if p.Spec.ShortDescription == "" || len(p.Spec.ShortDescription) > 255 || p.Spec.Homepage == "" || p.Spec.Description == "" {
		t.Error("spec.shortDescription (at most 255 characters), homepage and description are required")
	}
	var got []string
	for _, pl := range p.Spec.Platforms {
		osArch := pl.Selector.MatchLabels["os"] + "/" + pl.Selector.MatchLabels["arch"]
		got = append(got, osArch)
		if !strings.HasPrefix(pl.URI, "https://") || !strings.Contains(pl.URI, p.Spec.Version) ||
			!strings.HasSuffix(pl.URI, "_"+strings.ReplaceAll(osArch, "/", "_")+".tar.gz") {
			t.Errorf("%s: uri %q must be the https release archive of version %s for that platform", osArch, pl.URI, p.Spec.Version)
		}
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(pl.SHA256) {
			t.Errorf("%s: sha256 %q is not 64 lowercase hex digits", osArch, pl.SHA256)
		}
		if pl.Bin != "kubectl-lpauth" || len(pl.Files) == 0 || pl.Files[0].From != "kubectl-lpauth" {
			t.Errorf("%s: bin %q, files %+v: want the kubectl-lpauth binary", osArch, pl.Bin, pl.Files)
		}
	}
	slices.Sort(got)
	if want := []string{"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"}; !slices.Equal(got, want) {
		t.Errorf("platforms %q, want %q", got, want)
	}
	// The placeholders say so, so nobody publishes them as they are.
	if n := strings.Count(string(data), "# FILLED AT RELEASE"); n != 1+2*len(p.Spec.Platforms) {
		t.Errorf("%d placeholders marked FILLED AT RELEASE, want the version and each platform's uri and sha256", n)
	}
}
