package virtual

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashSaveEnv names the state file a child test process saves to and then
// hangs in, before the rename, until the parent kills it.
const crashSaveEnv = "FIDOKIT_TEST_CRASH_SAVE"

// TestCrashSaveChild is the child of TestStaleStateTempFilesRemovedOnLoad.
// It does nothing in a normal run.
func TestCrashSaveChild(t *testing.T) {
	path := os.Getenv(crashSaveEnv)
	if path == "" {
		t.Skip("run by TestStaleStateTempFilesRemovedOnLoad")
	}
	k, err := New(&Config{StatePath: path})
	require.NoError(t, err)
	k.st.Counter = 1000
	data, err := json.Marshal(k.st)
	require.NoError(t, err)
	_ = writeFileAtomic(path, data, func(string) error {
		os.Stdout.WriteString("ready\n")
		select {} // the parent's SIGKILL is the crash
	})
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// TestStaleStateTempFilesRemovedOnLoad is issue 13 item 10: a process
// killed in the middle of saving leaves a ".<state>.tmp-*" file holding the
// key's private keys; loading the state removes such files, and only them.
func TestStaleStateTempFilesRemovedOnLoad(t *testing.T) {
	t.Run("killed mid-write", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "state.json")
		k, err := New(&Config{StatePath: path})
		require.NoError(t, err)
		want := k.Credentials()
		require.NoError(t, k.Close())

		// A real crash: a child process dies by SIGKILL between writing
		// the temporary file and renaming it.
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashSaveChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashSaveEnv+"="+path)
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		line, err := bufio.NewReader(out).ReadString('\n')
		require.NoError(t, err, "child never reached the rename")
		require.Equal(t, "ready\n", line)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()

		left := listDir(t, dir)
		require.Len(t, left, 2, "the crash should leave the state and one temporary file: %q", left)
		require.True(t, matchTemp(tempPattern(path), left[0]), "%q is not a temporary state file", left[0])

		k, err = New(&Config{StatePath: path})
		require.NoError(t, err)
		defer k.Close()
		assert.Equal(t, []string{"state.json"}, listDir(t, dir), "New left the crashed save's temporary file")
		assert.Equal(t, want, k.Credentials())
		assert.Zero(t, k.Counter(), "the interrupted save took effect")
	})

	t.Run("only this state's temporary files", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "key.json")
		s := testState(t)
		require.NoError(t, s.save(path))
		data, err := json.Marshal(s)
		require.NoError(t, err)
		for i := 0; i < 3; i++ {
			f, err := os.CreateTemp(dir, tempPattern(path))
			require.NoError(t, err)
			_, err = f.Write(data[:len(data)*i/3])
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}
		keep := []string{".key.json.tmp-", ".other.json.tmp-123", "key.json.bak", "key.json.tmp-1", "other.json"}
		for _, name := range keep {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600))
		}
		require.NoError(t, os.Mkdir(filepath.Join(dir, ".key.json.tmp-dir"), 0o700))
		keep = append(keep, ".key.json.tmp-dir", "key.json")
		slices.Sort(keep)

		got, err := loadState(path)
		require.NoError(t, err)
		assert.Equal(t, s, got)
		assert.Equal(t, keep, listDir(t, dir))
	})

	t.Run("no state file yet", func(t *testing.T) {
		// A crash during a new key's first save leaves a temporary file
		// and no state file.
		dir := t.TempDir()
		path := filepath.Join(dir, "key.json")
		f, err := os.CreateTemp(dir, tempPattern(path))
		require.NoError(t, err)
		require.NoError(t, f.Close())

		k, err := New(&Config{StatePath: path})
		require.NoError(t, err)
		defer k.Close()
		assert.Equal(t, []string{"key.json"}, listDir(t, dir))
	})
}
