import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DomainError } from "../lib/errors.ts";
import { expandHostlist, foldHostlist, MAX_HOSTLIST_HOSTS } from "../lib/hostlist.ts";

describe("expandHostlist", () => {
  const cases: { hostlist: string; hosts: string[] }[] = [
    { hostlist: "node001", hosts: ["node001"] },
    { hostlist: "node[001-004]", hosts: ["node001", "node002", "node003", "node004"] },
    { hostlist: "node[1-3,5,7-9]", hosts: ["node1", "node2", "node3", "node5", "node7", "node8", "node9"] },
    { hostlist: "node[8-11]", hosts: ["node8", "node9", "node10", "node11"] },
    { hostlist: "node[098-101]", hosts: ["node098", "node099", "node100", "node101"] },
    { hostlist: "node[01-02],node[1-2]", hosts: ["node01", "node02", "node1", "node2"] },
    { hostlist: "r[1-2]n[1-3]", hosts: ["r1n1", "r1n2", "r1n3", "r2n1", "r2n2", "r2n3"] },
    { hostlist: "rack[1-2]-node[01-02].ib", hosts: ["rack1-node01.ib", "rack1-node02.ib", "rack2-node01.ib", "rack2-node02.ib"] },
    { hostlist: "node001,node003,gpu[1-2]", hosts: ["node001", "node003", "gpu1", "gpu2"] },
    { hostlist: "node[5]", hosts: ["node5"] },
    { hostlist: "[1-2]node", hosts: ["1node", "2node"] },
    { hostlist: "node[1-2],node2,node[2-3]", hosts: ["node1", "node2", "node3"] },
    { hostlist: "node[0-1]", hosts: ["node0", "node1"] },
  ];
  for (const { hostlist, hosts } of cases) {
    test(`expands ${hostlist}`, () => {
      assert.deepEqual(expandHostlist(hostlist), hosts);
    });
  }

  test("keeps n1 and n01 apart", () => {
    assert.deepEqual(expandHostlist("n1,n01"), ["n1", "n01"]);
  });

  test("expands exactly the maximum", () => {
    assert.equal(expandHostlist(`n[1-${MAX_HOSTLIST_HOSTS}]`).length, MAX_HOSTLIST_HOSTS);
  });

  const errors: { hostlist: string; message: RegExp }[] = [
    { hostlist: "", message: /Invalid hostlist "": it is empty/ },
    { hostlist: "node[]", message: /empty range "\[\]"/ },
    { hostlist: "node[5-1]", message: /reversed range "5-1": 1 is below 5/ },
    { hostlist: "node[010-002]", message: /reversed range "010-002"/ },
    { hostlist: "node[1-3", message: /"\[" without "\]"/ },
    { hostlist: "node1-3]", message: /"\]" without "\[" at position 8/ },
    { hostlist: "node[1-[2]]", message: /nested "\[" at position 8/ },
    { hostlist: "node[a-b]", message: /invalid range "a-b" in "\[a-b\]"/ },
    { hostlist: "node[1-2-3]", message: /invalid range "1-2-3"/ },
    { hostlist: "node[1,]", message: /invalid range "" in "\[1,\]"/ },
    { hostlist: "node[-3]", message: /invalid range "-3"/ },
    { hostlist: "node1,,node2", message: /empty host name/ },
    { hostlist: "node1,", message: /empty host name/ },
    { hostlist: "node1, node2", message: /invalid character " " in " node2"/ },
    { hostlist: "node$1", message: /invalid character "\$"/ },
    { hostlist: "[1-3]", message: /"\[1-3\]" has no host name outside brackets/ },
    { hostlist: "n[1234567890-1234567891]", message: /more than 9 digits/ },
    { hostlist: `n[1-${MAX_HOSTLIST_HOSTS + 1}]`, message: /more than the maximum of 10000 hosts/ },
    { hostlist: "n[1-5000,5001-10001]", message: /more than the maximum of 10000 hosts/ },
    { hostlist: "a[1-200]b[1-200]", message: /it expands to 40000 hosts, more than the maximum of 10000/ },
    { hostlist: "a[1-5000],b[1-5001]", message: /it expands to 10001 hosts/ },
  ];
  for (const { hostlist, message } of errors) {
    test(`rejects "${hostlist.slice(0, 40)}"`, () => {
      assert.throws(() => expandHostlist(hostlist), (error: unknown) => {
        assert.ok(error instanceof DomainError);
        assert.equal(error.kind, "invalid");
        assert.match(error.message, message);
        return true;
      });
    });
  }

  test("rejects a huge product before expanding it", () => {
    const started = performance.now();
    assert.throws(() => expandHostlist("a[1-9999]b[1-9999]c[1-9999]"), /more than the maximum/);
    assert.ok(performance.now() - started < 1000);
  });
});

describe("foldHostlist", () => {
  const cases: { hosts: string[]; folded: string }[] = [
    { hosts: ["node001", "node002", "node003", "node007"], folded: "node[001-003,007]" },
    { hosts: ["node3", "node1", "node2"], folded: "node[1-3]" },
    { hosts: ["node9", "node10", "node11"], folded: "node[9-11]" },
    { hosts: ["n1", "n01"], folded: "n1,n01" },
    { hosts: ["node001"], folded: "node001" },
    { hosts: ["login", "node1", "node2"], folded: "login,node[1-2]" },
    { hosts: ["r1n1", "r1n2", "r2n1"], folded: "r1n[1-2],r2n1" },
    { hosts: ["a1.ib", "a2.ib", "a3.ib"], folded: "a[1-3].ib" },
    { hosts: ["node1", "node1"], folded: "node1" },
    { hosts: [], folded: "" },
  ];
  for (const { hosts, folded } of cases) {
    test(`folds ${hosts.join(",") || "nothing"}`, () => {
      assert.equal(foldHostlist(hosts), folded);
    });
  }

  test("round-trips through expand", () => {
    const hostlists = ["node[001-100],gpu[1-8],login01", "r[1-3]n[01-12]", "n[0-9],n[010-012],x"];
    for (const hostlist of hostlists) {
      const hosts = expandHostlist(hostlist);
      assert.deepEqual(new Set(expandHostlist(foldHostlist(hosts))), new Set(hosts), hostlist);
    }
  });
});
