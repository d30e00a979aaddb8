# fish completion for ssocred.
# Install: copy to ~/.config/fish/completions/ssocred.fish

# Section names from the AWS config file: `__ssocred_names profile` or `__ssocred_names sso-session`.
function __ssocred_names --argument-names kind
    set -l file $AWS_CONFIG_FILE
    test -n "$file"; or set file ~/.aws/config
    test -r "$file"; or return 0
    if test "$kind" = profile
        string match -rq '^\s*\[default\]' <$file; and echo default
        string match -rg '^\s*\[profile\s+(.*?)\s*\]' <$file
    else
        string match -rg '^\s*\[sso-session\s+(.*?)\s*\]' <$file
    end
end

# True once `--` has been typed after `ssocred exec`: what follows is a command of its own.
function __ssocred_exec_command
    set -l tokens (commandline -opc)
    contains -- exec $tokens; and contains -- -- $tokens
end

# Completes the command after `ssocred exec ... --` as if it stood alone on the line.
function __ssocred_complete_exec_command
    set -l tokens (commandline -opc)
    set -l at (contains -i -- -- $tokens)
    set -l rest $tokens[(math $at + 1)..-1]
    complete -C (string join ' ' -- (string escape -- $rest) (commandline -ct))
end

# True once `ssocred configure populate` has been typed.
function __ssocred_populate
    __fish_seen_subcommand_from configure; and __fish_seen_subcommand_from populate
end

set -l commands login logout status import process env exec console container credentials-file forward accounts configure whoami discover doctor emulator demo \
    daemon service
set -l selector login logout import accounts doctor
set -l target process env exec console container credentials-file

complete -c ssocred -f
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -l help -d 'show help'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -l version -d 'show the version'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a login -d 'log in and store the token in the OS keyring'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a logout -d 'revoke the token, wipe the stored session'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a status -d 'sessions, token expiry, cached credentials'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a import -d 'take the token `aws sso login` cached'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a process -d 'role credentials for credential_process'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a env -d 'role credentials as shell variables'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a exec -d 'run a command with role credentials'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a console -d 'open the AWS console as the role'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a container -d 'serve the role to containers (HTTP)'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a credentials-file -d 'export to ~/.aws/credentials'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a accounts -d 'accounts and roles you can use'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a configure -d 'set up an SSO session and profiles'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a whoami -d 'who the credentials belong to (STS)'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a discover -d 'admin view of IAM Identity Center'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a doctor -d 'diagnose config, login, keyring, access'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a emulator -d 'local IAM Identity Center emulator'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a demo -d 'end-to-end tour against the emulator'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a daemon -d 'keep tokens fresh, serve credentials'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a service -d 'run the daemon as a user service'

# After `ssocred exec ... --`, complete the command being run.
complete -c ssocred -n __ssocred_exec_command -x -a '(__ssocred_complete_exec_command)'

complete -c ssocred -n "__fish_seen_subcommand_from $selector $target whoami discover; and not __ssocred_exec_command" \
    -l profile -x -a '(__ssocred_names profile)' -d 'a profile in ~/.aws/config'
complete -c ssocred -n "__fish_seen_subcommand_from $selector $target; and not __ssocred_exec_command" -l sso-session -x \
    -a '(__ssocred_names sso-session)' -d 'an sso-session in ~/.aws/config'
complete -c ssocred -n __ssocred_populate -l sso-session -x -a '(__ssocred_names sso-session)' \
    -d 'the sso-session to populate'
complete -c ssocred -n "__fish_seen_subcommand_from $target; and not __ssocred_exec_command" -l account-id -x -d 'AWS account id'
complete -c ssocred -n "__fish_seen_subcommand_from $target; and not __ssocred_exec_command" -l role-name -x -d 'role name'
set -l json login logout status import service accounts configure whoami discover doctor container credentials-file forward
complete -c ssocred -n "__fish_seen_subcommand_from $json" -l json -d 'print JSON'

complete -c ssocred -n "__fish_seen_subcommand_from login" -l use-device-code -d 'use the device code flow'
complete -c ssocred -n "__fish_seen_subcommand_from login" -l remote -d 'browser login from another machine via ssh -L'
complete -c ssocred -n "__fish_seen_subcommand_from login" -l port -x -d 'with --remote: the loopback port to listen on'
complete -c ssocred -n "__fish_seen_subcommand_from login" -l no-browser -d 'print the URL, open no browser'
complete -c ssocred -n "__fish_seen_subcommand_from login" -l timeout -x -d 'give up after SEC seconds'
complete -c ssocred -n "__fish_seen_subcommand_from login" -l export-aws-cli-cache -d 'also keep the token in ~/.aws/sso/cache'
complete -c ssocred -n "__fish_seen_subcommand_from logout" -l all -d 'every stored session'
complete -c ssocred -n "__fish_seen_subcommand_from process" -l login -d 'log in when needed (prompts on /dev/tty)'
complete -c ssocred -n "__fish_seen_subcommand_from console" -l print -d 'print the sign-in link'
complete -c ssocred -n "__fish_seen_subcommand_from console" -l destination -x -d 'the console page to open'
complete -c ssocred -n "__fish_seen_subcommand_from console" -l region -x -d 'the console region'
complete -c ssocred -n "not __fish_seen_subcommand_from $commands" -a forward -d "let an SSH host use this machine's daemon"
complete -c ssocred -n "__fish_seen_subcommand_from forward" -l allow -r -d 'ACCOUNT[:ROLE] the host may ask for'
complete -c ssocred -n "__fish_seen_subcommand_from forward" -l name -r -d "the forward's name"
complete -c ssocred -n "__fish_seen_subcommand_from forward" -l remote-socket -r -d 'the socket path on the host'
complete -c ssocred -n "__fish_seen_subcommand_from forward" -l print -d 'print the ssh command and config block'
complete -c ssocred -n "__fish_seen_subcommand_from forward" -l list -d 'list the saved forwards'
complete -c ssocred -n "__fish_seen_subcommand_from forward" -l remove -r -d 'forget a forward'
complete -c ssocred -n "__fish_seen_subcommand_from container" -l revoke -d "end the role's token at once"
complete -c ssocred -n "__fish_seen_subcommand_from credentials-file" -l as -x -d 'the section name'
complete -c ssocred -n "__fish_seen_subcommand_from credentials-file" -l remove -d 'remove the exported section'
complete -c ssocred -n "__fish_seen_subcommand_from env" -l format -x -a 'sh fish json env env-no-export powershell windows-cmd process' -d 'output syntax'
complete -c ssocred -n "__fish_seen_subcommand_from demo" -l keep -d 'keep the throw-away directory'
complete -c ssocred -n "__fish_seen_subcommand_from discover" -l write-config -d 'add its [sso-session] to ~/.aws/config'
complete -c ssocred -n "__fish_seen_subcommand_from discover" -l session-name -x -d 'name of the written [sso-session]'

complete -c ssocred -n "__fish_seen_subcommand_from accounts; or __ssocred_populate" -l max-workers -x \
    -d 'ListAccountRoles calls in flight'
complete -c ssocred -n "__fish_seen_subcommand_from accounts; or __ssocred_populate" -l rate -x \
    -d 'portal requests per second'

set -l configure_only "__fish_seen_subcommand_from configure; and not __fish_seen_subcommand_from populate"
complete -c ssocred -n $configure_only -a populate -d 'one profile per account and role'
complete -c ssocred -n $configure_only -l start-url -x -d 'the AWS access portal URL'
complete -c ssocred -n $configure_only -l sso-region -x -d 'the region of IAM Identity Center'
complete -c ssocred -n $configure_only -l session-name -x -d 'name of the [sso-session] section'
complete -c ssocred -n $configure_only -l scopes -x -d 'registration scopes, comma-separated'
complete -c ssocred -n $configure_only -l account-id -x -d 'the account of the profile'
complete -c ssocred -n $configure_only -l role-name -x -d 'the role of the profile'
complete -c ssocred -n $configure_only -l all -d 'a profile for every account and role'
complete -c ssocred -n $configure_only -l profile-name -x -d 'name of the written profile'
complete -c ssocred -n $configure_only -l use-device-code -d 'log in with the device code flow'
complete -c ssocred -n $configure_only -l no-browser -d 'print the login URL, open no browser'
complete -c ssocred -n $configure_only -l no-input -d 'never ask; missing answers are errors'
complete -c ssocred -n "__fish_seen_subcommand_from configure" -l region -x -d 'region of the written profiles'
complete -c ssocred -n "__fish_seen_subcommand_from configure" -l output -x -a 'json yaml yaml-stream text table' \
    -d 'output format of the written profiles'
complete -c ssocred -n __ssocred_populate -l template -x -d 'profile name template'
complete -c ssocred -n __ssocred_populate -l prune -d 'remove managed profiles that are gone'
complete -c ssocred -n __ssocred_populate -l dry-run -d 'print the change as a diff, write nothing'
complete -c ssocred -n __ssocred_populate -l keep-in-sync -d 'the daemon repeats it after logins and hourly'

complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l port -x -d 'port on 127.0.0.1'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l accounts -x -d 'generated directory: accounts'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l roles -x -d 'generated directory: roles per account'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l directory -r -F -d 'accounts, roles and user from JSON'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l token-ttl -x -d 'access token lifetime (s)'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l cred-ttl -x -d 'role credential lifetime (s)'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l registration-ttl -x -d 'client registration lifetime (s)'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l device-ttl -x -d 'device code lifetime (s)'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l code-ttl -x -d 'authorization code lifetime (s)'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l no-rotate -d 'keep refresh tokens valid after use'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l approve-after-polls -x -d 'approve device codes after N polls'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l manual-approve -d 'wait for a click on Allow/Deny'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l fail-rate -x -d 'share of requests answered 500'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l throttle-rate -x -d 'share of requests answered 429'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l latency-ms -x -d 'delay added to each request'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l seed -x -d 'seed for faults and generated ids'
complete -c ssocred -n "__fish_seen_subcommand_from emulator" -l verbose -d 'log each request to stderr'

set -l actions install uninstall status
complete -c ssocred -n "__fish_seen_subcommand_from service; and not __fish_seen_subcommand_from $actions" -a install \
    -d 'install and start the daemon'
complete -c ssocred -n "__fish_seen_subcommand_from service; and not __fish_seen_subcommand_from $actions" -a uninstall \
    -d 'stop and remove it'
complete -c ssocred -n "__fish_seen_subcommand_from service; and not __fish_seen_subcommand_from $actions" -a status \
    -d 'show its state'
complete -c ssocred -n "__fish_seen_subcommand_from service" -l dry-run -d 'print files and commands, change nothing'
complete -c ssocred -n "__fish_seen_subcommand_from service" -l store -x -a 'keyring memory' \
    -d 'with install: where the daemon keeps tokens'
