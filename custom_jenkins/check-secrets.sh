#!/usr/bin/env bash
# check-secrets: are the secret files of the Jenkins controller usable by the user this runs as?
#
#   check-secrets                  check, print the verdict, exit 0 (usable) or 2 (not)
#   check-secrets CMD [ARG...]     check, then exec CMD (the image's entrypoint: tini -- check-secrets jenkins.sh)
#
# Why: JCasC resolves each ${VAR} of casc.yaml from the file /run/secrets/VAR. A file that the Jenkins user
# (uid 1000) cannot read resolves to an empty string with only a warning in the log, and Jenkins comes up
# with an empty admin password and empty registry credentials. A root-owned secrets directory of mode 700
# does exactly that. So the controller refuses to start instead, and says what to fix.
#
# Checks, as the container's user: each required secret is a readable, non-empty file in SECRETS_DIR
# (default /run/secrets); each optional one, when present, is readable. It only opens and stats the files,
# never reads them, and prints names only, never a value.
set -euo pipefail

dir=${SECRETS_DIR:-/run/secrets}
required=(JENKINS_ADMIN_ID JENKINS_ADMIN_PASSWORD REGISTRY_USERNAME REGISTRY_PASSWORD)
optional=(AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY)
uid=$(id -u)
gid=$(id -g)
missing=() unreadable=() empty=()

# Opening the file for real, rather than `[[ -r ]]`, asks the kernel the question JCasC will ask.
can_read() { [[ -f $1 ]] && { : <"$1"; } 2>/dev/null; }

# A directory this user cannot search hides its files: they would all look missing, so say why instead.
dir_closed=false
if [[ -d $dir ]] && ! [[ -x $dir && -r $dir ]]; then
    dir_closed=true
fi

for name in "${required[@]}"; do
    file=$dir/$name
    if $dir_closed; then
        unreadable+=("$name")
    elif [[ ! -e $file ]]; then
        missing+=("$name")
    elif ! can_read "$file"; then
        unreadable+=("$name")
    elif [[ ! -s $file ]]; then
        empty+=("$name")
    fi
done
for name in "${optional[@]}"; do
    file=$dir/$name
    if ! $dir_closed && [[ -e $file ]] && ! can_read "$file"; then
        unreadable+=("$name")
    fi
done

if ((${#missing[@]} + ${#unreadable[@]} + ${#empty[@]} > 0)); then
    {
        printf 'check-secrets: uid %s (gid %s) cannot use these secrets in %s\n' "$uid" "$gid" "$dir"
        if $dir_closed; then
            printf '  the directory %s itself is not readable by uid %s\n' "$dir" "$uid"
        elif [[ ! -d $dir ]]; then
            printf '  there is no directory %s (mount the secrets directory there, read-only)\n' "$dir"
        fi
        ((${#missing[@]} == 0)) || printf '  missing:    %s\n' "${missing[*]}"
        ((${#unreadable[@]} == 0)) || printf '  unreadable: %s\n' "${unreadable[*]}"
        ((${#empty[@]} == 0)) || printf '  empty:      %s\n' "${empty[*]}"
        printf 'JCasC would resolve them to empty strings (with a warning only): Jenkins would have empty credentials.\n'
        printf 'Fix it on the host, in the directory mounted at %s (custom_jenkins/README.md, "Run"):\n' "$dir"
        ((${#missing[@]} + ${#empty[@]} == 0)) || printf "  printf '%%s' VALUE > secrets/NAME   (each missing or empty NAME)\n"
        printf '  chown -R %s:%s secrets; chmod 700 secrets; chmod 600 secrets/*\n' "$uid" "$gid"
        (($# == 0)) || printf 'check-secrets: refusing to start %s\n' "$1"
    } >&2
    exit 2
fi

absent=()
for name in "${optional[@]}"; do
    [[ -e $dir/$name ]] || absent+=("$name")
done
printf 'check-secrets: the %d required secrets in %s are readable by uid %s (values not shown)\n' \
    "${#required[@]}" "$dir" "$uid" >&2
((${#absent[@]} == 0)) || printf 'check-secrets: note: no %s: the credential aws is empty (profile local only)\n' \
    "${absent[*]}" >&2

if (($# > 0)); then
    exec "$@"
fi
