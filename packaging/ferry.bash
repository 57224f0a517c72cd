# bash completion for ferry (and ferry-client), installed by `make install`
# into bash-completion's directory (ferry(1)). Completes commands, their
# flags, output formats and, from `ferry config get-contexts -o name`, the
# names of contexts.

_ferry_contexts()
{
    "${COMP_WORDS[0]}" config get-contexts -o name 2>/dev/null
}

_ferry()
{
    local cur prev cmd sub i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}

    local globals="--server --token-file --ca-file --output -o --timeout --context --config --help"
    local commands="clusters install upgrade rollback uninstall adopt check repair history
        preflight jobs fleet config template version --version"

    # values of flags
    case $prev in
        --output|-o)
            COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
        --context)
            COMPREPLY=($(compgen -W "$(_ferry_contexts)" -- "$cur")); return ;;
        --token-file|--ca-file|--config|-f|--values)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --server|--timeout|--version|--set|--idempotency-key|--selector|-l|--state|--cluster|--limit|\
        --revision|--max-history|--retries|--namespace|--release-name|--ignore|--canary|--max-in-flight|\
        --waves|--max-failures|--pause-between-waves|--window|--window-duration|--window-tz)
            return ;;
    esac

    # the command: the first word that is not a global option or its value
    cmd="" sub=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --server|--token-file|--ca-file|--output|-o|--timeout|--context|--config) ((i++)); continue ;;
            -*) continue ;;
        esac
        if [ -z "$cmd" ]; then cmd=${COMP_WORDS[i]}; elif [ -z "$sub" ]; then sub=${COMP_WORDS[i]}; fi
    done

    if [ -z "$cmd" ]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$globals" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local flags=""
    case $cmd in
        clusters)
            [ -z "$sub" ] && { COMPREPLY=($(compgen -W "list get" -- "$cur")); return; }
            flags="--selector" ;;
        jobs)
            [ -z "$sub" ] && { COMPREPLY=($(compgen -W "list get wait cancel" -- "$cur")); return; }
            flags="--state --cluster --limit" ;;
        fleet)
            [ -z "$sub" ] && { COMPREPLY=($(compgen -W "upgrade preflight list get clusters pause resume approve cancel" -- "$cur")); return; }
            flags="--selector --version --canary --max-in-flight --waves --max-failures --pause-between-waves
                --window --window-duration --window-tz -f --values --set --idempotency-key --wait --state" ;;
        config)
            if [ -z "$sub" ]; then
                COMPREPLY=($(compgen -W "view current-context get-contexts use-context set-context delete-context rename-context" -- "$cur"))
                return
            fi
            case $sub in
                use-context|delete-context|rename-context|get-contexts|set-context)
                    if [[ $cur != -* ]]; then
                        COMPREPLY=($(compgen -W "$(_ferry_contexts)" -- "$cur")); return
                    fi ;;
            esac
            [ "$sub" = set-context ] && flags="--current --server --token-file --ca-file --output" || flags="-o"
            COMPREPLY=($(compgen -W "$flags" -- "$cur"))
            return ;;
        install|upgrade)
            flags="--version -f --values --set --image-mirror --dry-run --allow-existing-nodes --idempotency-key
                --upgrade --wait --reuse-values --reset-values --reset-then-reuse-values --max-history
                --on-failure --retries" ;;
        preflight) flags="--connection-only --idempotency-key --wait" ;;
        rollback) flags="--revision --dry-run --idempotency-key --wait" ;;
        uninstall) flags="--keep-history --delete-crds --restore-eni-agent --force --dry-run --idempotency-key --wait" ;;
        adopt) flags="--namespace --release-name --dry-run --idempotency-key --wait" ;;
        check|repair) flags="--ignore --dry-run --idempotency-key --wait" ;;
        history) flags="--revision" ;;
        template)
            if [[ $cur != -* ]]; then COMPREPLY=($(compgen -f -- "$cur")); return; fi
            flags="-f --values --set --set-string --set-json --kube-version --api-versions --namespace --name
                --output --skip-schema-validation" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags $globals" -- "$cur"))
    fi
}

complete -F _ferry ferry ferry-client
