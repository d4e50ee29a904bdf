/* promptq user add|ls|disable and promptq key create|ls|revoke: they work on
 * a store directly, also while its coordinator runs: through an engine of
 * their own (admin_only) and its typed identity operations, so the store
 * serialises them with the server's writes. */
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/access.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "base/clock.h"
#include "cli/options.h"
#include "base/ids.h"
#include "engine/coord.h"

typedef struct {
  char data[1024];
  char store[1200];
  bool admin;
  char user[128];
  char scope[16];
  char name[128];
  int64_t expires_ms;
} admin_opts;

#define O(field) offsetof(admin_opts, field)
#define S(field) sizeof(((admin_opts *)0)->field)
static const pq_opt admin_options[] = {
    {"data", "PROMPTQ_DATA", PQ_OPT_STR, O(data), S(data), "./data", 0, 0, "the data folder"},
    {"store", "PROMPTQ_STORE", PQ_OPT_STR, O(store), S(store), NULL, 0, 0,
     "the store's URL (default: sqlite://DATA/promptq.db)"},
    {"admin", NULL, PQ_OPT_BOOL, O(admin), 0, "false", 0, 0, "user add: an admin user"},
    {"user", NULL, PQ_OPT_STR, O(user), S(user), NULL, 0, 0, "key create / ls: whose key"},
    {"scope", NULL, PQ_OPT_STR, O(scope), S(scope), "client", 0, 0, "key create: client, worker or admin"},
    {"name", NULL, PQ_OPT_STR, O(name), S(name), NULL, 0, 0, "key create: a label for the key"},
    {"expires", NULL, PQ_OPT_MS, O(expires_ms), 0, "0", 0, 0, "key create: lifetime (e.g. 720h; 0: none)"},
};
#undef O
#undef S
#define N_OPTS (sizeof admin_options / sizeof admin_options[0])

static pq_coord *engine_open(const admin_opts *o) { return pq_cli_engine_open(o->store, o->data); }

/* One typed operation, committed before it returns. */
static pq_err write_op(pq_coord *c, pq_op *op) {
  pq_err e = pq_coord_call(c, op);
  pq_op_release(op);
  return e;
}

static int read_password(char *out, size_t size) {
  if (isatty(STDIN_FILENO)) {
    struct termios old, quiet;
    char again[256];
    tcgetattr(STDIN_FILENO, &old);
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    fprintf(stderr, "Password: ");
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    char *a = fgets(out, (int)size, stdin);
    fprintf(stderr, "\nAgain: ");
    char *b = fgets(again, sizeof again, stdin);
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    fprintf(stderr, "\n");
    if (!a || !b) return -1;
    out[strcspn(out, "\r\n")] = '\0';
    again[strcspn(again, "\r\n")] = '\0';
    int same = strcmp(out, again) == 0;
    sodium_memzero(again, sizeof again);
    if (!same) {
      fprintf(stderr, "promptq: the passwords differ\n");
      return -1;
    }
  } else if (!fgets(out, (int)size, stdin)) { /* piped: the first line */
    return -1;
  }
  out[strcspn(out, "\r\n")] = '\0';
  if (strlen(out) < 8) {
    fprintf(stderr, "promptq: a password needs 8 characters at least\n");
    return -1;
  }
  return 0;
}

static int usage(FILE *out, const char *what) {
  pq_opts_usage(out, what, "Manages users and API keys in a data folder (also while it is served).",
                admin_options, N_OPTS);
  return out == stdout ? 0 : 2;
}

int pq_cmd_user(int argc, char **argv) {
  admin_opts o;
  pq_args args;
  char err[512];
  if (pq_opts_load(admin_options, N_OPTS, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq user: %s\n", err);
    return 2;
  }
  const char *verb = args.n_positional ? args.positional[0] : "";
  const char *what = "promptq user add NAME [--admin] | ls | disable NAME | enable NAME  [--data DIR]";
  if (args.help) return usage(stdout, what);
  bool named = strcmp(verb, "add") == 0 || strcmp(verb, "disable") == 0 || strcmp(verb, "enable") == 0;
  if (named ? args.n_positional != 2 : strcmp(verb, "ls") != 0) return usage(stderr, what);
  pq_coord *c = engine_open(&o);
  if (!c) return 1;
  int rc = 0;
  pq_err e = PQ_OK;
  if (strcmp(verb, "add") == 0) {
    char password[256], hash[PQ_PASSWORD_HASH_MAX];
    if (read_password(password, sizeof password) != 0) {
      rc = 1;
    } else if ((e = pq_password_hash(password, hash)) == PQ_OK) {
      pq_user u = {.name = (char *)args.positional[1], .password_hash = hash, .admin = o.admin};
      pq_op op = {.kind = PQ_OP_USER_ADD, .in.user_add = {.user = &u}};
      if ((e = write_op(c, &op)) == PQ_OK)
        printf("user %s added%s (id %s)\n", u.name, o.admin ? " as an admin" : "", u.id);
    }
    sodium_memzero(password, sizeof password);
  } else if (strcmp(verb, "ls") == 0) {
    pq_user **users;
    size_t n;
    if ((e = pq_coord_list_users(c, &users, &n)) == PQ_OK) {
      char ts[PQ_TIME_BUF];
      printf("%-24s %-6s %-9s %s\n", "NAME", "ADMIN", "STATE", "CREATED");
      for (size_t i = 0; i < n; i++) {
        printf("%-24s %-6s %-9s %s\n", users[i]->name, users[i]->admin ? "yes" : "no",
               users[i]->disabled ? "disabled" : "active", pq_format_time(users[i]->created_at, ts, sizeof ts));
        pq_user_free(users[i]);
      }
      free(users);
    }
  } else {
    pq_op op = {.kind = PQ_OP_USER_SET_DISABLED,
                .in.user_set_disabled = {.name = args.positional[1], .disabled = strcmp(verb, "disable") == 0}};
    if ((e = write_op(c, &op)) == PQ_OK)
      printf("user %s %s\n", args.positional[1],
             op.in.user_set_disabled.disabled ? "disabled: its tokens and keys stop working now" : "enabled");
  }
  if (e == PQ_ERR_ALREADY_EXISTS) fprintf(stderr, "promptq user: %s exists already\n", args.positional[1]);
  else if (e == PQ_ERR_NOT_FOUND) fprintf(stderr, "promptq user: no user %s\n", args.positional[1]);
  else if (e != PQ_OK) fprintf(stderr, "promptq user: %s\n", pq_err_message(e));
  pq_coord_close(c);
  return rc || e != PQ_OK ? 1 : 0;
}

int pq_cmd_key(int argc, char **argv) {
  admin_opts o;
  pq_args args;
  char err[512];
  if (pq_opts_load(admin_options, N_OPTS, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq key: %s\n", err);
    return 2;
  }
  const char *verb = args.n_positional ? args.positional[0] : "";
  const char *what = "promptq key create --user NAME [--scope client|worker|admin] [--name N] [--expires 720h]"
                     " | ls [--user NAME] | revoke ID|PREFIX  [--data DIR]";
  if (args.help) return usage(stdout, what);
  bool ok = (strcmp(verb, "create") == 0 && args.n_positional == 1 && o.user[0]) ||
            (strcmp(verb, "ls") == 0 && args.n_positional == 1) ||
            (strcmp(verb, "revoke") == 0 && args.n_positional == 2);
  if (!ok) return usage(stderr, what);
  pq_coord *c = engine_open(&o);
  if (!c) return 1;
  pq_err e = PQ_OK;
  pq_user *u = NULL;
  if (o.user[0] && (e = pq_coord_get_user(c, NULL, o.user, &u)) == PQ_ERR_NOT_FOUND)
    fprintf(stderr, "promptq key: no user %s\n", o.user);
  if (e == PQ_OK && strcmp(verb, "create") == 0) {
    if (pq_scope_parse(o.scope) < 0) {
      fprintf(stderr, "promptq key: --scope is client, worker or admin\n");
      e = PQ_ERR_INVALID_REQUEST;
    } else if (strcmp(o.scope, "admin") == 0 && !u->admin) {
      fprintf(stderr, "promptq key: admin keys are for admin users\n");
      e = PQ_ERR_FORBIDDEN;
    } else {
      char secret[PQ_APIKEY_LEN + 1], hash[65], prefix[PQ_APIKEY_SHOWN + 1];
      pq_apikey_generate(secret);
      pq_apikey_hash(secret, hash);
      memcpy(prefix, secret, PQ_APIKEY_SHOWN); /* the start, to recognise it by */
      prefix[PQ_APIKEY_SHOWN] = '\0';
      int64_t now = pq_now_ms();
      pq_api_key k = {.user_id = u->id, .prefix = prefix, .hash = hash, .scope = o.scope,
                      .name = o.name[0] ? o.name : o.scope, .expires_at = o.expires_ms ? now + o.expires_ms : 0};
      pq_op op = {.kind = PQ_OP_KEY_ADD, .in.key_add = {.key = &k}};
      if ((e = write_op(c, &op)) == PQ_OK) {
        printf("%s\n", secret); /* alone on stdout, for scripts */
        fprintf(stderr, "created %s key %s for %s; it is shown this once\n", o.scope, k.id, u->name);
      }
      sodium_memzero(secret, sizeof secret);
    }
  } else if (e == PQ_OK && strcmp(verb, "ls") == 0) {
    pq_api_key **keys;
    size_t n;
    if ((e = pq_coord_list_keys(c, u ? u->id : NULL, &keys, &n)) == PQ_OK) {
      char ts[PQ_TIME_BUF];
      printf("%-36s %-18s %-7s %-9s %-16s %s\n", "ID", "PREFIX", "SCOPE", "STATE", "NAME", "CREATED");
      for (size_t i = 0; i < n; i++) {
        pq_api_key *k = keys[i];
        const char *state = k->revoked_at ? "revoked" : k->expires_at && k->expires_at <= pq_now_ms() ? "expired" : "active";
        printf("%-36s %-18s %-7s %-9s %-16s %s\n", k->id, k->prefix, k->scope, state, k->name,
               pq_format_time(k->created_at, ts, sizeof ts));
        pq_api_key_free(k);
      }
      free(keys);
    }
  } else if (e == PQ_OK) {
    const char *id = args.positional[1];
    pq_op op = {.kind = PQ_OP_KEY_REVOKE, .in.key_revoke = {.id_or_prefix = id}};
    if ((e = write_op(c, &op)) == PQ_OK) printf("key %s revoked: it stops working now\n", id);
    else if (e == PQ_ERR_NOT_FOUND) fprintf(stderr, "promptq key: no active key %s\n", id);
  }
  if (e != PQ_OK && e != PQ_ERR_NOT_FOUND && e != PQ_ERR_INVALID_REQUEST && e != PQ_ERR_FORBIDDEN)
    fprintf(stderr, "promptq key: %s\n", pq_err_message(e));
  pq_user_free(u);
  pq_coord_close(c);
  return e == PQ_OK ? 0 : 1;
}
