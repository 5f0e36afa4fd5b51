package images

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stampede-dev/stampede/harness/stack"
)

// DefaultMirror is where debootstrap fetches Debian from.
const DefaultMirror = "http://deb.debian.org/debian"

// Options shape Build.
type Options struct {
	Engine  string    // podman or docker; empty: podman if on PATH, else docker
	Root    string    // repository root (the main module's go.mod)
	Home    string    // state directory (.stampede): the Kafka jar cache; build contexts go in Home/images
	Mirror  string    // Debian mirror for debootstrap (DefaultMirror when empty)
	Only    []string  // image names to build; all when empty
	Rebuild bool      // remake the base filesystem even when its image exists
	Verbose bool      // stream every command's output, not only a failed step's tail
	Out     io.Writer // progress
}

// StepError is a build step that failed: which step, why, and the end of
// its output (the whole of it is in Log).
type StepError struct {
	Step   string
	Err    error
	Output string
	Log    string
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("images: step %q failed: %v", e.Step, e.Err)
	if e.Output != "" {
		msg += "\n" + e.Output
	}
	if e.Log != "" {
		msg += "\n(full output: " + e.Log + ")"
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrNoEngine is returned when neither Podman nor Docker can be run.
var ErrNoEngine = errors.New("images: no container engine: install podman (apt-get install -y podman runc) or Docker, or name one with --engine")

// FindEngine returns the engine binary to use: name if given, else podman,
// else docker, whichever is on PATH.
func FindEngine(name string) (string, error) {
	if name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("%w (%s: %v)", ErrNoEngine, name, err)
		}
		return p, nil
	}
	for _, n := range []string{"podman", "docker"} {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
	}
	return "", ErrNoEngine
}

// step is one named unit of a build.
type step struct {
	name string
	run  func(ctx context.Context) error
}

type builder struct {
	o      Options
	engine string
	dir    string // Home/images
	log    *os.File
	out    io.Writer
}

// Build builds the images o.Only (all when empty), printing each step with
// its duration. A failed step stops the build with a *StepError naming it.
func Build(ctx context.Context, o Options) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Mirror == "" {
		o.Mirror = DefaultMirror
	}
	want := map[string]bool{}
	for _, n := range o.Only {
		if _, err := Lookup(n); err != nil {
			return err
		}
		want[n] = true
	}
	if len(want) == 0 {
		for _, im := range All {
			want[im.Name] = true
		}
	}
	engine, err := FindEngine(o.Engine)
	if err != nil {
		return err
	}
	b := &builder{o: o, engine: engine, dir: filepath.Join(o.Home, "images"), out: o.Out}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	logPath := filepath.Join(b.dir, "build.log")
	if b.log, err = os.Create(logPath); err != nil {
		return err
	}
	defer b.log.Close()

	steps := []step{{"check the container engine (" + filepath.Base(engine) + " version)", func(ctx context.Context) error {
		return b.run(ctx, exec.CommandContext(ctx, engine, "version"))
	}}}
	if want["stampede"] {
		steps = append(steps, step{"go build stampede (static, CGO_ENABLED=0)", func(ctx context.Context) error {
			return b.goBuild(ctx, o.Root, "./cmd/stampede", b.context("stampede", "stampede"), "")
		}})
	}
	if want["temporal"] {
		steps = append(steps, step{"go build stampede-temporal (static, CGO_ENABLED=0; several minutes cold)", func(ctx context.Context) error {
			// -checklinkname=0: see TEMPORAL_LDFLAGS in the Makefile.
			return b.goBuild(ctx, filepath.Join(o.Root, "cmd", "stampede-temporal"), ".", b.context("temporal", "stampede-temporal"), "-checklinkname=0")
		}})
	}
	if want["kafka"] {
		steps = append(steps, step{"fetch the Kafka " + stack.KafkaVersion + " jars (Maven Central, cached in " + filepath.Join(o.Home, "cache") + ")", b.kafkaJars})
	}
	needBase := want["base"] || want["postgres"] || want["redis"] || want["kafka"]
	if needBase && (o.Rebuild || !b.exists(ctx, Base)) {
		rootfs := filepath.Join(b.dir, "rootfs")
		steps = append(steps,
			step{"debootstrap Debian bookworm (minbase) from " + o.Mirror, func(ctx context.Context) error { return b.debootstrap(ctx, rootfs) }},
			step{"import the base filesystem as " + Base, func(ctx context.Context) error { return b.importRootfs(ctx, rootfs) }},
		)
	} else if needBase {
		fmt.Fprintf(b.out, "    %s exists: debootstrap skipped (--rebuild remakes it)\n", Base)
	}
	for _, im := range All {
		if im.Name == "base" || !want[im.Name] {
			continue
		}
		steps = append(steps, step{"build " + im.Ref, func(ctx context.Context) error { return b.buildImage(ctx, im) }})
	}

	start := time.Now()
	for i, s := range steps {
		fmt.Fprintf(b.out, "==> [%d/%d] %s\n", i+1, len(steps), s.name)
		fmt.Fprintf(b.log, "\n==> %s\n", s.name)
		t0 := time.Now()
		if err := s.run(ctx); err != nil {
			var se *StepError
			if !errors.As(err, &se) {
				se = &StepError{Err: err}
			}
			se.Step, se.Log = s.name, logPath
			return se
		}
		fmt.Fprintf(b.out, "    done in %s\n", time.Since(t0).Round(100*time.Millisecond))
	}
	fmt.Fprintf(b.out, "built in %s\n", time.Since(start).Round(time.Second))
	return nil
}

// context returns the path of file in the build context of image name.
func (b *builder) context(name, file string) string {
	return filepath.Join(b.dir, name, file)
}

// run runs cmd with its output in the build log (and on Out when verbose);
// a failure carries the last lines of that output.
func (b *builder) run(ctx context.Context, cmd *exec.Cmd) error {
	var tail bytes.Buffer
	var w io.Writer = io.MultiWriter(b.log, &tail)
	if b.o.Verbose {
		w = io.MultiWriter(w, b.out)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = w
	}
	cmd.Stderr = w
	fmt.Fprintf(b.log, "$ %s\n", strings.Join(cmd.Args, " "))
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &StepError{Err: fmt.Errorf("%s: %w", filepath.Base(cmd.Args[0]), err), Output: lastLines(tail.String(), 25)}
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// goBuild builds pkg in module dir as a static binary at out, with ldflags
// beside the stripping ones.
func (b *builder) goBuild(ctx context.Context, dir, pkg, out, ldflags string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// timetzdata: FROM scratch has no /usr/share/zoneinfo.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags", "timetzdata", "-ldflags", strings.TrimSpace("-s -w "+ldflags), "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false")
	return b.run(ctx, cmd)
}

// kafkaJars fetches the broker's jars once, as `stampede up` does, and links
// them into the Kafka build context.
func (b *builder) kafkaJars(ctx context.Context) error {
	s := &stack.Stack{Home: b.o.Home, Out: b.log}
	src, err := s.KafkaJars(ctx)
	if err != nil {
		return err
	}
	dst := b.context("kafka", "jars")
	if err := os.RemoveAll(dst); err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".jar") {
			continue
		}
		if err := linkOrCopy(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no jars in %s: remove it and run again", src)
	}
	fmt.Fprintf(b.log, "%d jars from %s\n", n, src)
	return nil
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// exists reports whether the engine has the image ref.
func (b *builder) exists(ctx context.Context, ref string) bool {
	return exec.CommandContext(ctx, b.engine, "image", "inspect", ref).Run() == nil
}

// debootstrap makes a minimal Debian filesystem in rootfs.
func (b *builder) debootstrap(ctx context.Context, rootfs string) error {
	if os.Geteuid() != 0 {
		return errors.New("debootstrap needs root (it chroots and makes device nodes): run this step as root")
	}
	bin, err := exec.LookPath("debootstrap")
	if err != nil {
		if _, aerr := exec.LookPath("apt-get"); aerr != nil {
			return errors.New("debootstrap is not installed and apt-get is not available: install debootstrap")
		}
		fmt.Fprintln(b.out, "    installing debootstrap (apt-get install -y debootstrap)")
		inst := exec.CommandContext(ctx, "apt-get", "install", "-y", "debootstrap")
		inst.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if err := b.run(ctx, inst); err != nil {
			return err
		}
		if bin, err = exec.LookPath("debootstrap"); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(rootfs); err != nil {
		return err
	}
	if err := b.run(ctx, exec.CommandContext(ctx, bin, "--variant=minbase", "bookworm", rootfs, b.o.Mirror)); err != nil {
		return err
	}
	// What every image built on it wants: no recommends, no documentation,
	// no package lists or .debs left behind.
	files := map[string]string{
		"etc/apt/apt.conf.d/90stampede": "APT::Install-Recommends \"false\";\nAPT::Install-Suggests \"false\";\n",
		"etc/dpkg/dpkg.cfg.d/90stampede-nodoc": "path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n" +
			"path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*", "var/cache/apt/*.bin"} {
		matches, _ := filepath.Glob(filepath.Join(rootfs, glob))
		for _, m := range matches {
			os.RemoveAll(m)
		}
	}
	return nil
}

// importRootfs turns rootfs into the image Base and removes it.
func (b *builder) importRootfs(ctx context.Context, rootfs string) error {
	tar := exec.CommandContext(ctx, "tar", "--numeric-owner", "-C", rootfs, "-c", ".")
	imp := exec.CommandContext(ctx, b.engine, "import",
		"--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"--change", "ENV LANG=C.UTF-8",
		"--change", `CMD ["/bin/bash"]`,
		"-", Base)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return err
	}
	imp.Stdin = pipe
	var tarErr bytes.Buffer
	tar.Stderr = &tarErr
	if err := tar.Start(); err != nil {
		return err
	}
	if err := b.run(ctx, imp); err != nil {
		tar.Process.Kill()
		tar.Wait()
		return err
	}
	if err := tar.Wait(); err != nil {
		return fmt.Errorf("tar %s: %w: %s", rootfs, err, tarErr.String())
	}
	return os.RemoveAll(rootfs)
}

// buildImage writes im's build context (its embedded Containerfile and
// scripts beside what earlier steps put there) and builds it.
func (b *builder) buildImage(ctx context.Context, im Image) error {
	dir := filepath.Join(b.dir, im.Name)
	if err := writeAssets(im.Name, dir); err != nil {
		return err
	}
	args := []string{"build", "--network=host", "--build-arg", "BASE=" + Base, "-t", im.Ref, "-f", filepath.Join(dir, "Containerfile")}
	if filepath.Base(b.engine) == "podman" {
		// Never reach for a registry: the base is local or the build fails here.
		args = append(args, "--pull=never")
	}
	return b.run(ctx, exec.CommandContext(ctx, b.engine, append(args, dir)...))
}

// writeAssets copies assets/name into dir; scripts stay executable.
func writeAssets(name, dir string) error {
	root := path.Join("assets", name)
	return fs.WalkDir(assets, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(p, root)))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if bytes.HasPrefix(data, []byte("#!")) {
			mode = 0o755
		}
		os.Remove(dst) // a read-only or differently-moded file from an earlier run
		return os.WriteFile(dst, data, mode)
	})
}

// Size is one image and how large the engine says it is (0: not built).
type Size struct {
	Image Image
	Bytes int64
}

// Sizes reports each image's size as the engine stores it.
func Sizes(ctx context.Context, engineName string) ([]Size, error) {
	engine, err := FindEngine(engineName)
	if err != nil {
		return nil, err
	}
	var out []Size
	for _, im := range All {
		s := Size{Image: im}
		if b, err := exec.CommandContext(ctx, engine, "image", "inspect", "--format", "{{.Size}}", im.Ref).Output(); err == nil {
			s.Bytes, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
		out = append(out, s)
	}
	return out, nil
}

// Names lists the image names, in build order.
func Names() []string {
	var out []string
	for _, im := range All {
		out = append(out, im.Name)
	}
	return out
}
