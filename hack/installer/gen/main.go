// Command gen writes the install's other shapes from dist/install.yaml (make build-installer,
// make helm): the namespaced install and the Helm chart. See package installer.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lpauth/lpauth-operator/hack/installer"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "installer:", err)
		os.Exit(1)
	}
}

func run() error {
	in := flag.String("in", "dist/install.yaml", "the cluster-wide install (kustomize build config/default)")
	namespacedOut := flag.String("namespaced", "", "write the namespaced install here")
	watch := flag.String("watch-namespaces", "", "comma-separated namespaces the namespaced install watches")
	chartDir := flag.String("chart", "", "write the Helm chart into this folder (replaced)")
	version := flag.String("chart-version", "0.1.0", "the chart's version")
	flag.Parse()
	if *namespacedOut == "" && *chartDir == "" {
		return errors.New("nothing to write: give -namespaced and/or -chart")
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	objs, err := installer.Parse(data)
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	if *namespacedOut != "" {
		var namespaces []string
		for _, ns := range strings.Split(*watch, ",") {
			if ns = strings.TrimSpace(ns); ns != "" {
				namespaces = append(namespaces, ns)
			}
		}
		ns, err := installer.Namespaced(objs, namespaces)
		if err != nil {
			return fmt.Errorf("namespaced install: %w", err)
		}
		out, err := installer.Marshal(ns)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*namespacedOut, out, 0o644); err != nil {
			return err
		}
		fmt.Printf("wrote %s (watching %s)\n", *namespacedOut, strings.Join(namespaces, ", "))
	}
	if *chartDir != "" {
		files, err := installer.Chart(objs, *version)
		if err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		if err := writeChart(*chartDir, files); err != nil {
			return err
		}
		fmt.Printf("wrote %s (%d files)\n", *chartDir, len(files))
	}
	return nil
}

// writeChart replaces the folder, so a template of an object no longer in the install goes too.
func writeChart(dir string, files map[string][]byte) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
	}
	return nil
}
