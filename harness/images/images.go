// Package images builds the container images the platform runs in (the
// testcontainers path in stampedetest, and compose/) with a local container
// engine, Podman or Docker, without any image registry: Stampede's own
// binaries go FROM scratch, PostgreSQL, Redis and Kafka onto a Debian base
// filesystem made here with debootstrap.
//
// It must never pull an image: where no registry is reachable a pull can only
// fail, slowly. Every image it names is built by Build.
package images

import (
	"embed"
	"fmt"
	"strings"

	"github.com/stampede-dev/stampede/harness/stack"
)

// Image references, as the engine tags them. "localhost/" keeps them apart
// from any registry's images of the same name (Podman would otherwise try
// its search registries), and Docker treats it as a plain name too.
const (
	Base     = "localhost/stampede/debian:bookworm"
	Postgres = "localhost/stampede/postgres:15"
	Redis    = "localhost/stampede/redis:7"
	Kafka    = "localhost/stampede/kafka:" + stack.KafkaVersion
	Temporal = "localhost/stampede/temporal:local"
	Stampede = "localhost/stampede/stampede:local"
)

// Image is one image Build makes.
type Image struct {
	Name    string // what --only and error messages call it
	Ref     string
	Summary string
}

// All lists the images in build order: the base filesystem first, since
// PostgreSQL, Redis and Kafka are built on it.
var All = []Image{
	{"base", Base, "Debian bookworm (minbase) made with debootstrap from the Debian mirror"},
	{"postgres", Postgres, "PostgreSQL 15 (Debian package), official-image entrypoint contract"},
	{"redis", Redis, "Redis 7 (Debian package)"},
	{"kafka", Kafka, "Apache Kafka " + stack.KafkaVersion + " (KRaft) from Maven Central jars on Debian's JRE 17"},
	{"temporal", Temporal, "cmd/stampede-temporal (Temporal server + Web UI), static, FROM scratch"},
	{"stampede", Stampede, "bin/stampede (every platform process), static, FROM scratch"},
}

// Lookup returns the image called name.
func Lookup(name string) (Image, error) {
	var names []string
	for _, im := range All {
		if im.Name == name {
			return im, nil
		}
		names = append(names, im.Name)
	}
	return Image{}, fmt.Errorf("images: unknown image %q (known: %s)", name, strings.Join(names, ", "))
}

// assets holds each image's Containerfile and the scripts it copies in.
//
//go:embed assets
var assets embed.FS
