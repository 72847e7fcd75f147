"""The few `aws` CLI commands the aws-iam recipe runs, against an IAM user kept in a JSON file,
answering as the real CLI (awscli 1.x) does: JSON on stdout; a service error as
`An error occurred (CODE) when calling the OPERATION operation: MESSAGE` on stderr, exit 255.

    iam list-access-keys    -> {"AccessKeyMetadata": [{UserName, AccessKeyId, Status, CreateDate}]}
    iam create-access-key   -> {"AccessKey": {UserName, AccessKeyId, Status, SecretAccessKey,
                               CreateDate}}; LimitExceeded when the user has `limit` keys
                               (AWS: two)
    iam delete-access-key --access-key-id ID
    sts get-caller-identity -> {UserId, Account, Arn}

Every call is authenticated: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be one of the
user's keys (InvalidClientTokenId otherwise). --user-name and --output are accepted and ignored
(one user, JSON only).

The state file ($FAKE_AWS_STATE) is {"limit": N, "keys": [{"id", "secret", "created"}],
"created": [ids made by create-access-key], "deleted": [ids deleted]}, written whole (a new file
renamed over the old one) before anything is printed, under an exclusive lock for the whole call.
"""
import datetime, fcntl, json, os, secrets, sys


def fail(code, operation, message):
    sys.stderr.write(
        f"\nAn error occurred ({code}) when calling the {operation} operation: {message}\n")
    sys.exit(255)


def main():
    path = os.environ["FAKE_AWS_STATE"]
    args = [a for a in sys.argv[1:]]
    for flag in ("--output", "--user-name"):
        while flag in args:
            i = args.index(flag)
            del args[i:i + 2]
    lock = open(path + ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    with open(path) as f:
        state = json.load(f)
    operation = "".join(w.capitalize() for w in args[1].split("-")) if len(args) > 1 else "?"
    caller = (os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY"))
    if not any((k["id"], k["secret"]) == caller for k in state["keys"]):
        fail("InvalidClientTokenId", operation,
             "The security token included in the request is invalid.")

    def save():
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.rename(tmp, path)

    def meta(k):
        return {"UserName": "ci", "AccessKeyId": k["id"], "Status": "Active",
                "CreateDate": k["created"]}

    if args[:2] == ["iam", "list-access-keys"]:
        out = {"AccessKeyMetadata": [meta(k) for k in state["keys"]]}
    elif args[:2] == ["iam", "create-access-key"]:
        if len(state["keys"]) >= state["limit"]:
            fail("LimitExceeded", operation,
                 f"Cannot exceed quota for AccessKeysPerUser: {state['limit']}")
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        k = {"id": "AKIA" + secrets.token_hex(8).upper(), "secret": secrets.token_urlsafe(30),
             "created": now.isoformat()}
        state["keys"].append(k)
        state["created"].append(k["id"])
        save()
        out = {"AccessKey": dict(meta(k), SecretAccessKey=k["secret"])}
    elif args[:2] == ["iam", "delete-access-key"] and "--access-key-id" in args:
        key_id = args[args.index("--access-key-id") + 1]
        if not any(k["id"] == key_id for k in state["keys"]):
            fail("NoSuchEntity", operation, f"The Access Key with id {key_id} cannot be found.")
        state["keys"] = [k for k in state["keys"] if k["id"] != key_id]
        state["deleted"].append(key_id)
        save()
        out = None
    elif args[:2] == ["sts", "get-caller-identity"]:
        out = {"UserId": "AIDAFAKE", "Account": "123456789012",
               "Arn": "arn:aws:iam::123456789012:user/ci"}
    else:
        sys.stderr.write(f"fake aws: unknown command {args}\n")
        sys.exit(252)
    if out is not None:
        print(json.dumps(out, indent=4))


main()
