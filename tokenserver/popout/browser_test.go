package popout_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lpauth/lpauth-operator/api/branding"
	"github.com/lpauth/lpauth-operator/api/v1alpha1"
)

// The pop-out window in a real browser: Debian's chromium, headless, driven over the DevTools
// protocol. LivePerson's window is played by a local page that records the query it is opened
// with.

func chromium(t *testing.T) string {
	if testing.Short() {
		t.Skip("a real browser (Chromium): skipped by -short")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is missing: `make test` installs it with hack/chromium.sh")
	}
	t.Skip("chromium is not installed (hack/chromium.sh installs Debian's package)")
	return ""
}

func browserContext(t *testing.T) context.Context {
	return browserContextTimeout(t, 60*time.Second)
}

func browserContextTimeout(t *testing.T, timeout time.Duration) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		// Root in a container has no user namespace for the sandbox.
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// Screenshots in plain sRGB, so a CSS colour is the same bytes in the PNG on any machine.
		chromedp.Flag("force-color-profile", "srgb"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// lpWindow is LivePerson's unified window; it hands every query it is opened with to the test.
func lpWindow(t *testing.T) (*httptest.Server, string, <-chan string) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/le_unified_window/index.html" {
			got <- r.URL.RawQuery
		}
		fmt.Fprint(w, "<!doctype html><title>LivePerson window</title><p id=window>window</p>")
	}))
	t.Cleanup(srv.Close)
	return srv, srv.URL + "/le_unified_window/index.html", got
}

func waitWindow(t *testing.T, got <-chan string) string {
	select {
	case q := <-got:
		return q
	case <-time.After(30 * time.Second):
		t.Fatal("LivePerson's window was never opened")
	}
	return ""
}

// windowState is the kind of state LivePerson sends: a JSON document of about 4 KB.
func windowState() string {
	return `{"lpUnifiedWindowConfig":{"accountId":"12345678","engConf":"` + strings.Repeat("e", 3900) + `"},"ssoKey":"k&=?/ +%"}`
}

func checkWindowQuery(t *testing.T, f *fixture, windowURL, rawQuery, state string) {
	t.Helper()
	if !strings.HasPrefix(rawQuery, "code=") || !strings.HasSuffix(rawQuery, "&state="+url.QueryEscape(state)) {
		t.Fatalf("the window got %q…, want code=… and the state byte for byte", rawQuery[:min(len(rawQuery), 120)])
	}
	q, _ := url.ParseQuery(rawQuery)
	if q.Get("state") != state {
		t.Fatal("state differs")
	}
	redeemAt(t, f, q.Get("code"), windowURL)
}

func TestPopoutInBrowserStaticUsers(t *testing.T) {
	ctx := browserContext(t)
	_, windowURL, got := lpWindow(t)
	f := newFixture(t, staticUsers(), windowURL)
	state := windowState()
	authURL := authorizeURL(f, "redirect_uri", windowURL, "state", state)

	// A wrong password first: the form says so, accessibly, and stays.
	err := chromedp.Do(ctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "demo"),
		chromedp.SendKeys(`#password`, "wrong"),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#login-error`),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	alert, err := chromedp.Run(ctx, chromedp.Text(`#login-error`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(`#username`, "demo"),
		chromedp.SendKeys(`#password`, "lpauth-demo"),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#window`),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if alert != branding.DefaultText.WrongCredentials {
		t.Fatalf("got alert %q, want %q", alert, branding.DefaultText.WrongCredentials)
	}
	checkWindowQuery(t, f, windowURL, waitWindow(t, got), state)
}

func TestPopoutInBrowserLandingPage(t *testing.T) {
	ctx := browserContext(t)
	_, windowURL, got := lpWindow(t)
	// The brand's site: its login page keeps the login request, and once the person has logged
	// in its backend completes it through the issue API and redirects the browser.
	var tokenServer string
	brand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			fmt.Fprintf(w, `<!doctype html><form method=post action=/login><input type=hidden name=login_request value="%s">`+
				`<input id=user name=user><button id=go type=submit>Log in</button></form>`, r.URL.Query().Get("login_request"))
		case http.MethodPost:
			_ = r.ParseForm()
			body := fmt.Sprintf(`{"login_request":%q,"sub":"brand-user-%s","claims":{"email":"%s@brand.example"}}`,
				r.PostForm.Get("login_request"), r.PostForm.Get("user"), r.PostForm.Get("user"))
			req, _ := http.NewRequest(http.MethodPost, tokenServer+"/api/v1/authorizations", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+issueToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				http.Error(w, "authorization failed", http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			var out struct {
				RedirectTo string `json:"redirect_to"`
			}
			_ = jsonDecode(resp, &out)
			http.Redirect(w, r, out.RedirectTo, http.StatusFound)
		}
	}))
	t.Cleanup(brand.Close)
	f := newFixture(t, &v1alpha1.LoginSpec{LandingPage: &v1alpha1.LandingPageLogin{URL: brand.URL + "/login"}}, windowURL)
	tokenServer = f.srv.URL
	state := windowState()
	err := chromedp.Do(ctx,
		chromedp.Navigate(authorizeURL(f, "redirect_uri", windowURL, "state", state)),
		chromedp.WaitVisible(`#user`),
		chromedp.SendKeys(`#user`, "ada"),
		chromedp.Click(`#go`),
		chromedp.WaitVisible(`#window`),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	checkWindowQuery(t, f, windowURL, waitWindow(t, got), state)
}

// TestPopoutInBrowserNeverLeavesThePrefix: a redirect_uri under a prefix entry that climbs out of
// its directory with "%2e%2e" (a browser resolves it to another path of the same host) gets the
// error page: the browser stays on the token server, and the host is never opened, let alone
// with a code.
func TestPopoutInBrowserNeverLeavesThePrefix(t *testing.T) {
	ctx := browserContext(t)
	opened := make(chan string, 8)
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case opened <- r.URL.Path:
		default:
		}
		fmt.Fprint(w, "<!doctype html><title>LivePerson's host</title><p id=window>window</p>")
	}))
	t.Cleanup(host.Close)
	f := newFixture(t, staticUsers(), "prefix:"+host.URL+"/le_unified_window/")
	escape := host.URL + "/le_unified_window/%2e%2e/evil/steal.html"
	err := chromedp.Do(ctx,
		chromedp.Navigate(authorizeURL(f, "redirect_uri", escape, "state", windowState())),
		// A CSS selector: a plain string is a search, and "h1" would also match the style sheet's text.
		chromedp.WaitVisible(chromedp.CSS(`h1`)),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if heading == "Sign in" {
		// The redirect_uri was taken: sign in as the person would, to show where the code goes.
		err = chromedp.Do(ctx,
			chromedp.SendKeys(`#username`, "demo"),
			chromedp.SendKeys(`#password`, "lpauth-demo"),
			chromedp.Click(`button[type=submit]`),
			chromedp.WaitVisible(`#window`),
		)
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		u, _ := url.Parse(loc)
		t.Fatalf("redirect_uri %q got the login form; after signing in the browser landed on %s (code in query: %v, %v)",
			escape, u.Path, u.Query().Has("code"), err)
	}
	if heading != "Sign-in link not valid" {
		t.Fatalf("heading %q, want the error page's \"Sign-in link not valid\"", heading)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if !strings.HasPrefix(loc, f.srv.URL+"/authorize?") {
		t.Fatalf("the browser is on %s, want the token server's error page", loc)
	}
	select {
	case p := <-opened:
		t.Fatalf("the browser opened %s on the redirect_uri's host", p)
	default:
	}
}

// TestBrandedPageInBrowser: the login form with a French branding ConfigMap, as Chromium shows
// it. The brand's title is a heading on the page, every word is the brand's, and the screenshot
// has the brand's colours: the background around the form, and the button.
func TestBrandedPageInBrowser(t *testing.T) {
	ctx := browserContext(t)
	f := newBrandedFixture(t, french, staticUsers())
	type texts struct{ Lang, Brand, Heading, Prompt, Username, Password, Button, Alert string }
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(800, 600),
		chromedp.Navigate(authorizeURL(f)),
		chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, "demo"),
		chromedp.SendKeys(`#password`, "faux"),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible(`#login-error`),
		// The focus ring would cover part of the button: take the picture without it.
		chromedp.Blur(`#username`),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	// Read, not waited for: on a page without one of these, the test fails at once.
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[texts](`(() => {
			const text = s => { const e = document.querySelector(s); return e ? e.innerText : "" };
			return {Lang: document.documentElement.lang, Brand: text("#brand"), Heading: text("#heading"), Prompt: text("main > p"),
				Username: text("label[for=username]"), Password: text("label[for=password]"), Button: text("button[type=submit]"),
				Alert: text("#login-error")};
		})()`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	want := texts{
		"fr", french["title"], french["text.signInTitle"], french["text.signInPrompt"], french["text.username"], french["text.password"],
		french["text.signInButton"], french["text.wrongCredentials"],
	}
	if shown != want {
		t.Errorf("the page shows %+v, want %+v", shown, want)
	}

	type rect struct{ X, Y, Width, Height float64 }
	brand, err := chromedp.Run(ctx, chromedp.Evaluate[rect](`(() => {
		const e = document.querySelector("#brand");
		return e ? e.getBoundingClientRect().toJSON() : {X: 0, Y: 0, Width: 0, Height: 0};
	})()`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	path := filepath.Join(t.TempDir(), "branded-login.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	// For a person to look at; the test does not depend on it.
	_ = os.WriteFile(filepath.Join(os.TempDir(), "branded-login.png"), shot, 0o644)
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot %s: %v", path, err)
	}
	background, primary := color.RGBA{0xf3, 0xe5, 0xc8, 0xff}, color.RGBA{0x8e, 0x24, 0xaa, 0xff}
	b := img.Bounds()
	for _, p := range []image.Point{{b.Min.X + 2, b.Min.Y + 2}, {b.Max.X - 3, b.Min.Y + 2}, {b.Min.X + 2, b.Max.Y - 3}} {
		if got := color.RGBAModel.Convert(img.At(p.X, p.Y)); got != background {
			t.Errorf("screenshot %s: pixel %v is %v, want the branding's backgroundColor %v", path, p, got, background)
		}
	}
	// The button is about 350×40 px of the primary colour, less its white text.
	primaryPixels := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if color.RGBAModel.Convert(img.At(x, y)) == primary {
				primaryPixels++
			}
		}
	}
	if primaryPixels < 5000 {
		t.Errorf("screenshot %s: %d pixels of the branding's primaryColor %v, want a button's worth (5000 or more)", path, primaryPixels, primary)
	}
	// The title is drawn where the page says its heading is: dark text on the white card.
	if b.Dx() != 800 {
		t.Fatalf("screenshot %s is %d pixels wide, want the viewport's 800", path, b.Dx())
	}
	box := image.Rect(int(brand.X), int(brand.Y), int(brand.X+brand.Width), int(brand.Y+brand.Height))
	dark := 0
	for y := box.Min.Y; y < box.Max.Y; y++ {
		for x := box.Min.X; x < box.Max.X; x++ {
			if c := color.GrayModel.Convert(img.At(x, y)).(color.Gray); c.Y < 100 {
				dark++
			}
		}
	}
	if dark < 200 {
		t.Errorf("screenshot %s: %d dark pixels in the title heading's box %v, want the title drawn there (200 or more)", path, dark, box)
	}
}
