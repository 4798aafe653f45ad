// Package agent is the device side of Driftline's edge: it installs signed bundles atomically
// and keeps the last good one, fetches the bundle its source names (conditional requests, with
// backoff when the source is unreachable), and answers predictions on a local port. It uses
// the standard library only, as package edge does.
package agent

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/driftline/driftline/edge"
)

// Files in the agent's directory.
const (
	currentFile  = "current.bundle"
	previousFile = "previous.bundle" // the last good bundle before the current one
	highestFile  = "highest-counter"
)

// Store keeps a device's installed bundle in a directory and the model loaded from it.
type Store struct {
	Dir      string
	Keys     []ed25519.PublicKey
	Features []string // the order the host program sends; nil: any

	mu      sync.RWMutex
	model   *edge.Model
	prev    *edge.Model // the previous bundle's model, when it loads
	counter uint64
	highest uint64 // the highest counter ever installed here: nothing older is accepted again
}

// Open loads the installed bundle: the current one, or when it cannot be loaded (a power cut
// mid-install cannot cause that, a corrupted disk can) the previous one, made current again.
// No bundle installed is not an error: Model returns nil until one is.
func (s *Store) Open() error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	if raw, err := os.ReadFile(filepath.Join(s.Dir, highestFile)); err == nil {
		if _, err := fmt.Sscan(string(raw), &s.highest); err != nil {
			return fmt.Errorf("%s: %v", highestFile, err)
		}
	}
	cur, errCur := s.loadFile(currentFile, 0)
	if errCur == nil {
		s.set(cur)
		if prev, err := s.loadFile(previousFile, 0); err == nil {
			s.mu.Lock()
			s.prev = prev
			s.mu.Unlock()
		}
		return nil
	}
	if errors.Is(errCur, os.ErrNotExist) {
		return nil
	}
	prev, errPrev := s.loadFile(previousFile, 0)
	if errPrev != nil {
		return fmt.Errorf("installed bundle: %v; and the previous one: %v", errCur, errPrev)
	}
	if err := s.replace(previousFile, currentFile); err != nil {
		return err
	}
	s.set(prev)
	return nil
}

func (s *Store) loadFile(name string, installed uint64) (*edge.Model, error) {
	data, err := os.ReadFile(filepath.Join(s.Dir, name))
	if err != nil {
		return nil, err
	}
	return edge.Load(data, edge.Options{Keys: s.Keys, Installed: installed, Features: s.Features})
}

func (s *Store) set(m *edge.Model) {
	s.mu.Lock()
	s.model, s.counter = m, m.Manifest.Counter
	s.highest = max(s.highest, m.Manifest.Counter)
	s.mu.Unlock()
}

// Highest is the highest counter ever installed: a bundle below it is refused, even after the
// device rolled back to its previous bundle.
func (s *Store) Highest() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.highest
}

// Model is the installed model (nil: none yet).
func (s *Store) Model() *edge.Model {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.model
}

// Paired is the previous bundle's model when it is another version with the same feature
// order: the agent scores each request with it too, so the fleet's canary compares both
// versions on the same requests (nil: none).
func (s *Store) Paired() *edge.Model {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.prev == nil || s.model == nil || s.prev.Manifest.Version == s.model.Manifest.Version ||
		!slices.Equal(s.prev.Manifest.Features, s.model.Manifest.Features) {
		return nil
	}
	return s.prev
}

// Counter is the installed bundle's counter (0: none).
func (s *Store) Counter() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.counter
}

// Install verifies a bundle (signature, counter not below the installed one, feature order)
// and makes it current atomically: it is written and synced beside the current one, the
// current one becomes the previous one, and a rename puts the new one in place; a crash at any
// point leaves a loadable current or previous bundle. Installing the installed bundle again
// changes nothing.
func (s *Store) Install(data []byte) (*edge.Model, error) {
	m, err := edge.Load(data, edge.Options{Keys: s.Keys, Installed: s.Highest(), Features: s.Features})
	if err != nil {
		return nil, err
	}
	if cur := s.Model(); cur != nil && cur.Manifest.Counter == m.Manifest.Counter && cur.Manifest.BodySHA256 == m.Manifest.BodySHA256 {
		return cur, nil
	}
	tmp := filepath.Join(s.Dir, "incoming.bundle")
	if err := writeSynced(tmp, data); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(s.Dir, currentFile)); err == nil {
		if err := s.copyFile(currentFile, previousFile); err != nil {
			return nil, err
		}
	}
	if err := writeSynced(filepath.Join(s.Dir, highestFile), []byte(fmt.Sprint(max(s.Highest(), m.Manifest.Counter)))); err != nil {
		return nil, err
	}
	if err := s.replace("incoming.bundle", currentFile); err != nil {
		return nil, err
	}
	old := s.Model()
	s.set(m)
	if old != nil {
		s.mu.Lock()
		s.prev = old
		s.mu.Unlock()
	}
	return m, nil
}

// RollBack makes the previous bundle current again (the fleet's rollback of a bad version
// comes as a newer bundle; this is the device's own, when the current one misbehaves).
func (s *Store) RollBack() error {
	prev, err := s.loadFile(previousFile, 0)
	if err != nil {
		return fmt.Errorf("no previous bundle to roll back to: %w", err)
	}
	if err := s.replace(previousFile, currentFile); err != nil {
		return err
	}
	s.set(prev)
	s.mu.Lock()
	s.prev = nil
	s.mu.Unlock()
	return nil
}

func (s *Store) copyFile(from, to string) error {
	data, err := os.ReadFile(filepath.Join(s.Dir, from))
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Dir, to+".tmp")
	if err := writeSynced(tmp, data); err != nil {
		return err
	}
	return s.replace(to+".tmp", to)
}

// replace renames within the directory and syncs the directory, so the rename survives a crash.
func (s *Store) replace(from, to string) error {
	if err := os.Rename(filepath.Join(s.Dir, from), filepath.Join(s.Dir, to)); err != nil {
		return err
	}
	d, err := os.Open(s.Dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadPublicKeys reads the registry's bundle-signing public keys: Ed25519, hex, one a line
// ('#' starts a comment).
func ReadPublicKeys(path string) ([]ed25519.PublicKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := hex.DecodeString(line)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%s line %d: want an Ed25519 public key of %d bytes in hex", path, i+1, ed25519.PublicKeySize)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no key", path)
	}
	return keys, nil
}
