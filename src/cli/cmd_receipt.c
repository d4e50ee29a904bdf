/* promptq receipt verify FILE (--public-key B64 | --coordinator URL) */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "model/receipt.h"

typedef struct {
  pq_cli_client_opts client;
  char public_key[128];
} receipt_opts;

static const pq_opt receipt_options[] = {
    PQ_CLI_CLIENT_OPTS(receipt_opts),
    {"public-key", "PROMPTQ_RECEIPT_KEY", PQ_OPT_STR, offsetof(receipt_opts, public_key),
     sizeof(((receipt_opts *)0)->public_key), NULL, 0, 0,
     "the coordinator's public key (base64); without it, it is fetched from --coordinator"},
};

int pq_cmd_receipt(int argc, char **argv) {
  receipt_opts o;
  pq_args args;
  char err[512];
  size_t n = sizeof receipt_options / sizeof receipt_options[0];
  if (pq_opts_load(receipt_options, n, &o, argc, argv, &args, err, sizeof err) != 0) {
    fprintf(stderr, "promptq receipt: %s\n", err);
    return 2;
  }
  if (args.help || args.n_positional != 2 || strcmp(args.positional[0], "verify") != 0) {
    pq_opts_usage(args.help ? stdout : stderr, "promptq receipt verify FILE [--public-key B64]",
                  "Checks a receipt (GET /v1/jobs/{id}/receipt) against the coordinator's public key, offline "
                  "when the key is given.", receipt_options, n);
    return args.help ? 0 : 2;
  }
  json_error_t jerr;
  json_t *receipt = json_load_file(args.positional[1], 0, &jerr);
  if (!receipt) {
    fprintf(stderr, "promptq receipt: cannot read %s: %s\n", args.positional[1], jerr.text);
    return 2;
  }
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  int rc = 2;
  if (!o.public_key[0]) { /* ask the coordinator for its key */
    json_t *resp = NULL;
    if (pq_cli_call(&o.client, "GET", "/v1/receipts/key", NULL, 10000, &resp) == 0)
      snprintf(o.public_key, sizeof o.public_key, "%s", json_string_value(json_object_get(resp, "public_key")) ?: "");
    json_decref(resp);
  }
  if (pq_receipt_public_parse(o.public_key, pk) != 0) {
    fprintf(stderr, "promptq receipt: no usable public key (give --public-key or --coordinator)\n");
  } else {
    const char *why = NULL;
    if (pq_receipt_verify(receipt, pk, &why) == PQ_OK) {
      json_t *body = json_object_get(receipt, "receipt");
      printf("valid: job %s, model %s, output sha256 %s\n", json_string_value(json_object_get(body, "job_id")),
             json_string_value(json_object_get(body, "model")),
             json_string_value(json_object_get(body, "output_sha256")));
      rc = 0;
    } else {
      printf("INVALID: %s\n", why);
      rc = 1;
    }
  }
  json_decref(receipt);
  return rc;
}
