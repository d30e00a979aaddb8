# bash completion for ssocred.
# Install: copy to ~/.local/share/bash-completion/completions/ssocred (bash-completion loads it on
# first use), or add `source /path/to/ssocred.bash` to ~/.bashrc.

# Section names from the AWS config file: `_ssocred_sections profile` or `_ssocred_sections sso-session`.
_ssocred_sections() {
    local file="${AWS_CONFIG_FILE:-$HOME/.aws/config}"
    [ -r "$file" ] || return 0
    if [ "$1" = profile ]; then
        sed -n -e 's/^[[:space:]]*\[profile[[:space:]]\{1,\}\([^]]*[^][:space:]]\)[[:space:]]*\].*/\1/p' \
            -e 's/^[[:space:]]*\[\(default\)\].*/\1/p' "$file"
    else
        sed -n 's/^[[:space:]]*\[sso-session[[:space:]]\{1,\}\([^]]*[^][:space:]]\)[[:space:]]*\].*/\1/p' "$file"
    fi
}

_ssocred_reply() {
    local IFS=$'\n'
    # shellcheck disable=SC2207 # one candidate per line
    COMPREPLY=($(compgen -W "$1" -- "$2"))
}

_ssocred() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD - 1]}"
    local commands="login logout status import process env exec console container credentials-file forward accounts configure whoami discover doctor emulator demo
        daemon service"
    local cmd="" cmd_at=0 i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -*) ;;
            *) cmd="${COMP_WORDS[i]}" cmd_at=$i; break ;;
        esac
    done
    if [ -z "$cmd" ]; then
        # shellcheck disable=SC2086 # the command list is plain words
        _ssocred_reply "$(printf '%s\n' $commands --help --version)" "$cur"
        return 0
    fi

    if [ "$cmd" = exec ]; then
        # After `--` comes the command to run: complete it like a command line of its own.
        for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
            if [ "${COMP_WORDS[i]}" = "--" ]; then
                if [ $((i + 1)) -eq "$COMP_CWORD" ]; then
                    _ssocred_reply "$(compgen -c -- "$cur" | sort -u)" "$cur"
                elif declare -F _command_offset >/dev/null; then
                    _command_offset $((i + 1))
                else
                    _ssocred_reply "$(compgen -f -- "$cur")" "$cur"
                fi
                return 0
            fi
        done
    fi

    case "$prev" in
        --profile) _ssocred_reply "$(_ssocred_sections profile)" "$cur"; return 0 ;;
        --sso-session) _ssocred_reply "$(_ssocred_sections sso-session)" "$cur"; return 0 ;;
        --format) _ssocred_reply $'sh\nfish\njson\nenv\nenv-no-export\npowershell\nwindows-cmd\nprocess' "$cur"; return 0 ;;
        --output) _ssocred_reply $'json\nyaml\nyaml-stream\ntext\ntable' "$cur"; return 0 ;;
        --store) _ssocred_reply $'keyring\nmemory' "$cur"; return 0 ;;
        --directory) _ssocred_reply "$(compgen -f -- "$cur")" "$cur"; return 0 ;;
        --account-id | --role-name | --timeout | --port | --accounts | --roles | --token-ttl | --cred-ttl | \
            --registration-ttl | --device-ttl | --code-ttl | --approve-after-polls | --fail-rate | \
            --throttle-rate | --latency-ms | --seed | --max-workers | --rate | --start-url | --sso-region | \
            --session-name | --scopes | --profile-name | --region | --template)
            return 0 ;;
    esac

    local opts=""
    case "$cmd" in
        login) opts="--profile --sso-session --use-device-code --remote --port --no-browser --timeout --export-aws-cli-cache --json" ;;
        logout) opts="--profile --sso-session --all --json" ;;
        status) opts="--json" ;;
        import) opts="--profile --sso-session --json" ;;
        process) opts="--profile --sso-session --account-id --role-name --login" ;;
        env) opts="--profile --sso-session --account-id --role-name --format" ;;
        exec) opts="--profile --sso-session --account-id --role-name --" ;;
        console) opts="--profile --sso-session --account-id --role-name --print --destination --region" ;;
        container) opts="--profile --sso-session --account-id --role-name --revoke --json" ;;
        credentials-file) opts="--profile --sso-session --account-id --role-name --as --remove --json" ;;
        forward) opts="--allow --name --remote-socket --print --list --remove --json --" ;;
        emulator) opts="--port --accounts --roles --directory --token-ttl --cred-ttl --registration-ttl --device-ttl
            --code-ttl --no-rotate --approve-after-polls --manual-approve --fail-rate --throttle-rate --latency-ms
            --seed --verbose" ;;
        accounts) opts="--profile --sso-session --max-workers --rate --json" ;;
        configure)
            # The first word that is neither an option nor an option's value is the subcommand.
            local sub="" skip=0 word
            for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
                word="${COMP_WORDS[i]}"
                if [ "$skip" = 1 ]; then
                    skip=0
                    [ "$word" = "=" ] && skip=1 # --option=value comes as three words
                    continue
                fi
                case "$word" in
                    --start-url | --sso-region | --session-name | --scopes | --account-id | --role-name | \
                        --profile-name | --region | --output) skip=1 ;;
                    -*) ;;
                    *) sub="$word"; break ;;
                esac
            done
            if [ "$sub" = populate ]; then
                opts="--sso-session --template --region --output --prune --dry-run --keep-in-sync --max-workers --rate --json"
            elif [ -z "$sub" ]; then
                opts="populate --start-url --sso-region --session-name --scopes --account-id --role-name --all
                    --profile-name --region --output --use-device-code --no-browser --no-input --json"
            fi
            ;;
        whoami) opts="--profile --json" ;;
        discover) opts="--profile --write-config --session-name --json" ;;
        doctor) opts="--profile --sso-session --json" ;;
        demo) opts="--keep" ;;
        service)
            opts="--store --dry-run --json"
            local action=""
            for ((i = cmd_at + 1; i < COMP_CWORD; i++)); do
                case "${COMP_WORDS[i]}" in
                    -*) ;;
                    *) [ "${COMP_WORDS[i - 1]}" = --store ] || action="${COMP_WORDS[i]}" ;;
                esac
            done
            if [ -z "$action" ] && [[ "$cur" != -* ]]; then
                _ssocred_reply $'install\nuninstall\nstatus' "$cur"
                return 0
            fi
            ;;
    esac
    # shellcheck disable=SC2086 # the option lists are plain words
    _ssocred_reply "$(printf '%s\n' $opts --help)" "$cur"
}

complete -F _ssocred ssocred
