package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/payloom/payloom"
	"github.com/payloom/payloom/vault"
)

// The vault's key management: payloom vault status | rotate | retire. The
// commands run next to live servers (on SQLite, on the same data
// directory; on PostgreSQL, from anywhere with the same keyring). They
// never print key material: only key IDs, counts and file names.

func (m *Main) vaultCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Manage the vault's key-encryption keys",
		Long: "Card numbers are encrypted under a data key per merchant, and data keys are stored\n" +
			"wrapped by a key-encryption key (KEK). The first KEK is the master key\n" +
			"(PAYLOOM_MASTER_KEY or <data>/master.key); further ones live in <data>/keys/kek-<ID>.key\n" +
			"or in PAYLOOM_MASTER_KEYS. Rotate to a new KEK, then retire the old one.",
	}
	cmd.AddCommand(m.vaultStatusCommand(g), m.vaultRotateCommand(g), m.vaultRetireCommand(g))
	return cmd
}

// vaultSession is an opened store and vault for one command.
type vaultSession struct {
	store *store
	keys  *vault.Keys
	vault *vault.Vault
}

func (s *vaultSession) Close() error { return s.store.Close() }

func (m *Main) openVault(ctx context.Context, g *globalOptions) (*vaultSession, error) {
	st, err := openStore(ctx, g.dataDir, g.databaseURL)
	if err != nil {
		return nil, err
	}
	if err := st.ensureMigrated(ctx); err != nil {
		st.Close()
		return nil, err
	}
	keys, err := vault.LoadKeyring(g.dataDir, m.getenv)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("load vault keys: %w", err)
	}
	v := vault.New(st, keys, vault.Options{Logger: m.newLogger(g.logLevel)})
	return &vaultSession{store: st, keys: keys, vault: v}, nil
}

// vaultActor marks what the command does as done by "cli" from "cli" in
// the audit log.
func vaultActor(ctx context.Context) context.Context {
	return payloom.WithActor(ctx, payloom.Actor{ID: payloom.AuditActorCLI, Source: payloom.AuditSourceCLI})
}

func (m *Main) vaultStatusCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "List the key-encryption keys and how many data keys each wraps",
		Long: "List every key-encryption key the store or this node knows: when it was created,\n" +
			"whether it is primary or retired, how many data keys it wraps, how many cards are\n" +
			"still encrypted under it directly (from before envelope encryption), and whether\n" +
			"this node has it (present, missing, or mismatch: other bytes under that ID).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := m.openVault(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := s.vault.Status(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEK\tCREATED\tPRIMARY\tRETIRED\tDATA KEYS\tCARDS\tTHIS NODE")
			for _, k := range st {
				created, retired := "-", "-"
				if k.Registered {
					created = k.CreatedAt.UTC().Format(time.RFC3339)
				}
				if k.RetiredAt != nil {
					retired = k.RetiredAt.UTC().Format(time.RFC3339)
				}
				local := string(k.Local)
				if !k.Registered {
					local = "present, never used"
				}
				if k.Local == vault.LocalPresent {
					where := string(k.Source)
					if k.Path != "" {
						where = k.Path
					}
					local += " (" + where + ")"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", k.ID, created, yesNo(k.Primary), retired, k.DataKeys, k.Cards, local)
			}
			return w.Flush()
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (m *Main) vaultRotateCommand(g *globalOptions) *cobra.Command {
	var to string
	var batch int
	cmd := &cobra.Command{
		Use:   "rotate [--to KEK_ID]",
		Short: "Make a new key-encryption key primary and rewrap every data key under it",
		Long: "Create a new key-encryption key in <data>/keys (mode 0600), make it the primary one, and\n" +
			"rewrap every merchant's data key under it, in batches, while servers keep serving (they\n" +
			"find the new key file by themselves). Cards from before envelope encryption are moved\n" +
			"under their merchant's data key on the way.\n\n" +
			"When the keys come from the environment (PAYLOOM_MASTER_KEY or PAYLOOM_MASTER_KEYS), no\n" +
			"file is written: add the new key to PAYLOOM_MASTER_KEYS on every node first; rotate then\n" +
			"makes it primary (or prints how to do that). --to names the key to make primary; with\n" +
			"the current primary, it finishes an interrupted rotation.\n\n" +
			"On SQLite copy the new key file to your key backups; on several nodes, copy it to\n" +
			"every node's <data>/keys before rotating with --to (see docs/operations.md).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if batch < 1 || batch > 10000 {
				return errors.New("--batch-size must be from 1 to 10000")
			}
			ctx := vaultActor(cmd.Context())
			s, err := m.openVault(ctx, g)
			if err != nil {
				return err
			}
			defer s.Close()
			target := to
			if target == "" {
				st, err := s.vault.Status(ctx)
				if err != nil {
					return err
				}
				if target, err = m.newKEK(s.keys, st); err != nil {
					return err
				}
			}
			fmt.Fprintf(m.Stderr, "Rotating to key-encryption key %s...\n", target)
			res, err := s.vault.Rotate(ctx, target, batch)
			if err != nil {
				if res != nil {
					fmt.Fprintf(m.Stderr, "%s is primary; %d data keys rewrapped and %d cards re-encrypted before the error.\n"+
						"Run payloom vault rotate --to %s to finish.\n", target, res.Rewrapped, res.Reencrypted, target)
				}
				return err
			}
			prev := ""
			if res.PreviousID != "" {
				prev = " (was " + res.PreviousID + ")"
			}
			fmt.Fprintf(m.Stderr, "%s is the primary key-encryption key%s: %d data keys rewrapped, %d cards re-encrypted.\n",
				res.KEKID, prev, res.Rewrapped, res.Reencrypted)
			if res.PreviousID != "" {
				fmt.Fprintf(m.Stderr, "When every node has the new key, retire the old one: payloom vault retire %s\n", res.PreviousID)
			}
			_, err = fmt.Fprintln(m.Stdout, res.KEKID)
			return err
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the key-encryption key to make primary (default: a new one)")
	cmd.Flags().IntVar(&batch, "batch-size", vault.DefaultRotateBatch, "data keys rewrapped per transaction")
	return cmd
}

// newKEK picks the key a rotation without --to goes to: a new key file, or
// with keys from the environment, the one key there the store has never
// seen.
func (m *Main) newKEK(keys *vault.Keys, st []vault.KEKStatus) (string, error) {
	var taken, unused []string
	for _, k := range st {
		switch {
		case k.Registered:
			taken = append(taken, k.ID)
		case k.ID != keys.KeyID(): // the master key is no new key
			unused = append(unused, k.ID)
		}
	}
	if !keys.FromEnv() {
		id, err := keys.GenerateKEK(taken)
		if err != nil {
			return "", err
		}
		_, path, _ := keys.Source(id)
		fmt.Fprintf(m.Stderr, "Created key-encryption key %s in %s (mode 0600). Back it up now, apart from the database.\n", id, path)
		return id, nil
	}
	switch len(unused) {
	case 1:
		return unused[0], nil
	case 0:
		next := 2
		for _, id := range append(taken, keys.KEKIDs()...) {
			if n, ok := strings.CutPrefix(id, "k"); ok {
				if seq, err := strconv.Atoi(strings.SplitN(n, "_", 2)[0]); err == nil && seq >= next {
					next = seq + 1
				}
			}
		}
		id := "k" + strconv.Itoa(next)
		return "", fmt.Errorf("the keys come from the environment (%s, %s), so rotate writes no key file. To rotate:\n"+
			"  1. make a key:  openssl rand -base64 32\n"+
			"  2. append %s:<that key> to %s (comma-separated, keeping every entry) on every node\n"+
			"     and wherever you run payloom commands; keep a copy in your secrets manager\n"+
			"  3. restart the nodes one at a time, so that each holds the new key\n"+
			"  4. run: payloom vault rotate --to %s",
			vault.MasterKeyEnv, vault.MasterKeysEnv, id, vault.MasterKeysEnv, id)
	default:
		return "", fmt.Errorf("%s holds several keys the store has never used (%s): choose one with --to",
			vault.MasterKeysEnv, strings.Join(unused, ", "))
	}
}

func (m *Main) vaultRetireCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "retire KEK_ID",
		Short: "Retire a key-encryption key that no longer wraps anything, and delete its key file",
		Long: "Retire a key-encryption key: refused while it is primary or still wraps a data key (run\n" +
			"payloom vault rotate first). The key is marked retired in the store and its key file in\n" +
			"<data>/keys is deleted; from then on it decrypts nothing. The master key's file stays: it\n" +
			"is also the root of the card fingerprints. Keys from PAYLOOM_MASTER_KEYS are yours to\n" +
			"remove from every node's environment.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := vaultActor(cmd.Context())
			s, err := m.openVault(ctx, g)
			if err != nil {
				return err
			}
			defer s.Close()
			res, err := s.vault.Retire(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stderr, "Retired key-encryption key %s.\n", res.KEKID)
			switch {
			case res.DeletedFile != "":
				fmt.Fprintf(m.Stderr, "Deleted its key file %s. On other nodes, delete their copy of %s too.\n",
					res.DeletedFile, filepath.Base(res.DeletedFile))
			case res.Source == vault.SourceMasterFile || res.Source == vault.SourceMasterEnv:
				fmt.Fprintf(m.Stderr, "It is the master key (%s), which stays: it is also the root of the card fingerprints.\n"+
					"As a key-encryption key it is never used again.\n", res.Source)
			case res.Source == vault.SourceEnv:
				fmt.Fprintf(m.Stderr, "Remove %s from %s on every node, and restart them one at a time.\n", res.KEKID, vault.MasterKeysEnv)
			default:
				fmt.Fprintf(m.Stderr, "This node has no key file for it; delete it wherever a copy remains.\n")
			}
			return nil
		},
	}
}
