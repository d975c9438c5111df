package testenv

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessDiesWithItsTest runs this test binary as a child that starts
// a long sleep through StartProcess and exits without any cleanup, as a
// test binary killed by `go test -timeout` does: the sleep must not
// outlive it.
func TestProcessDiesWithItsTest(t *testing.T) {
	if os.Getenv("TESTENV_ORPHAN_CHILD") == "1" {
		p := StartProcess(t, "sleep", filepath.Join(t.TempDir(), "sleep.log"), os.Environ(), "sleep", "60")
		os.Stdout.WriteString("pid " + strconv.Itoa(p.Pid()) + "\n")
		os.Exit(3) // no cleanup runs
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestProcessDiesWithItsTest$")
	cmd.Env = append(os.Environ(), "TESTENV_ORPHAN_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "pid "); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	_ = cmd.Wait()
	if pid == 0 {
		t.Fatal("the child started no process")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Signal 0 asks whether the process exists; a zombie would answer,
		// but the sleep's parent is gone, so it is reaped at once.
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d outlived the test binary that started it", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
