/*
 * A Chronicle plugin in C: denies Bash commands that contain a configured word
 * (default "terraform destroy"). Build:
 *   cc -shared -fPIC -O2 -I plugin-api/include -o libdeny_word.so plugin-api/examples/c/deny_word.c
 * and copy libdeny_word.so into a plugin directory.
 *
 * It looks for the word in the raw event text, which is enough for a demonstration; a real
 * plugin would parse the JSON (cJSON, yyjson, ...).
 */
#include <stdlib.h>
#include <string.h>

#include "chronicle_plugin.h"

static char word[128] = "terraform destroy";

const char *chronicle_plugin_manifest(void) {
    return "{\"name\":\"c-deny-word\",\"version\":\"1.0.0\",\"abi_version\":1,"
           "\"events\":[\"PreToolUse\"],\"tool_matcher\":\"Bash\",\"timeout_ms\":100,"
           "\"failure_policy\":\"closed\"}";
}

/* Config: {"word": "..."} (a tiny scan, not a JSON parser). */
int chronicle_plugin_init(const char *config_json, size_t len) {
    (void)len;
    const char *key = strstr(config_json, "\"word\"");
    if (key == NULL) return 0;
    const char *start = strchr(key + 6, '"');
    if (start == NULL) return 1;
    start++;
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= sizeof word) return 1;
    memcpy(word, start, (size_t)(end - start));
    word[end - start] = '\0';
    return 0;
}

char *chronicle_plugin_handle(const char *event_json, size_t len) {
    (void)len;
    if (strstr(event_json, word) == NULL) return NULL;
    const char *prefix = "{\"decision\":\"deny\",\"reason\":\"c-deny-word: commands containing '";
    const char *suffix = "' are not allowed here\"}";
    size_t n = strlen(prefix) + strlen(word) + strlen(suffix) + 1;
    char *out = malloc(n);
    if (out == NULL) return NULL;
    strcpy(out, prefix);
    strcat(out, word);
    strcat(out, suffix);
    return out;
}

void chronicle_plugin_free(char *answer) { free(answer); }
