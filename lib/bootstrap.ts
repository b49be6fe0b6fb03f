import { join } from "node:path";
import type { Config } from "./config.ts";
import { randomHex } from "./config.ts";
import type { Database, Transaction } from "./db/database.ts";
import * as schema from "./db/schema/index.ts";
import { firstFreeAddress, type NetworkRow } from "./ipam.ts";
import { logger } from "./log.ts";

const log = logger("bootstrap");

/** Base64 of the default group partition script: the root file system lives in RAM. */
export const DEFAULT_PARTSCRIPT = btoa("mount -o mpol=interleave -t tmpfs tmpfs /sysroot\n");
/** Base64 of the default group post-install script: records the RAM root in fstab. */
export const DEFAULT_POSTSCRIPT = btoa("echo 'tmpfs / tmpfs mpol=interleave 0 0' >> /sysroot/etc/fstab\n");
/** Default directories the OS image grab copies from a node. */
export const DEFAULT_GRAB_FILESYSTEMS = "/, /boot, /var";
/** Default paths the OS image grab leaves out. */
export const DEFAULT_GRAB_EXCLUDE =
  "/proc/*, /sys/*, /dev/*, /tmp/*, /run/*, /var/log/*, /var/tmp/*, /media/*, /boot/*, lost+found/, /etc/aliases.db";
/** Default kernel modules an OS image loads for BMC access. */
export const DEFAULT_KERNEL_MODULES = "ipmi_devintf, ipmi_si, ipmi_msghandler";

interface BootstrapNetwork {
  name: string;
  cidr: string;
  type: string;
  dhcpRange?: [string, string];
}

/** The small cluster a new database starts with, like the original daemon's bootstrap.ini. */
const BOOTSTRAP = {
  controller: { hostname: "controller", ipaddress: "10.141.255.254", network: "cluster" },
  networks: [
    { name: "cluster", cidr: "10.141.0.0/16", type: "ethernet", dhcpRange: ["10.141.155.0", "10.141.165.0"] },
    { name: "ipmi", cidr: "10.148.0.0/16", type: "ethernet" },
    { name: "ib", cidr: "10.149.0.0/16", type: "infiniband" },
  ] as BootstrapNetwork[],
  provisionNetwork: "cluster",
  bmcNetwork: "ipmi",
  group: "compute-group",
  osimage: "compute-image",
  bmcsetup: "default-bmcsetup",
  switch: "switch01",
  nodes: ["node001", "node002", "node003", "node004"],
};

/**
 * Fills an empty database with the bootstrap cluster in one transaction. Does nothing when a
 * cluster row exists. The BMC password is generated, so no default credential ships.
 */
export async function bootstrapIfEmpty(db: Database, config: Config, now: number): Promise<boolean> {
  const existing = await db.orm.select({ id: schema.cluster.id }).from(schema.cluster).limit(1);
  if (existing.length > 0) return false;

  await db.write(async (tx) => {
    await tx.insert(schema.cluster).values({
      id: 1,
      name: "mycluster",
      technical_contacts: "root@localhost",
      provision_method: "http",
      provision_fallback: "http",
      nameserver_ip: BOOTSTRAP.controller.ipaddress,
      ntp_server: BOOTSTRAP.controller.ipaddress,
    });

    const networks = new Map<string, NetworkRow>();
    for (const spec of BOOTSTRAP.networks) networks.set(spec.name, await insertNetwork(tx, spec));

    const [controller] = await tx
      .insert(schema.controller)
      .values({ hostname: BOOTSTRAP.controller.hostname, beacon: true, serverport: config.api.listenPort })
      .returning();
    await tx.insert(schema.ipAddress).values({
      network_id: networks.get(BOOTSTRAP.controller.network)!.id,
      ipaddress: BOOTSTRAP.controller.ipaddress,
      controller_id: controller.id,
    });

    const [osimage] = await tx
      .insert(schema.osimage)
      .values({
        name: BOOTSTRAP.osimage,
        path: join(config.files.imageDirectory, BOOTSTRAP.osimage),
        kerneloptions: "net.ifnames=0 biosdevname=0",
        kernelmodules: DEFAULT_KERNEL_MODULES,
        grab_filesystems: DEFAULT_GRAB_FILESYSTEMS,
        grab_exclude: DEFAULT_GRAB_EXCLUDE,
        distribution: "redhat",
      })
      .returning();
    const [bmcsetup] = await tx
      .insert(schema.bmcsetup)
      .values({
        name: BOOTSTRAP.bmcsetup,
        userid: 2,
        username: "admin",
        password: randomHex(12),
        netchannel: 1,
        mgmtchannel: 1,
      })
      .returning();
    await tx.insert(schema.switchDevice).values({
      name: BOOTSTRAP.switch,
      oid: ".1.3.6.1.2.1.17.7.1.2.2.1.2",
      read: "public",
      rw: "trusted",
    });

    const [group] = await tx
      .insert(schema.nodeGroup)
      .values({
        name: BOOTSTRAP.group,
        setupbmc: true,
        bmcsetup_id: bmcsetup.id,
        domain: BOOTSTRAP.provisionNetwork,
        netboot: true,
        bootmenu: false,
        osimage_id: osimage.id,
        prescript: "",
        partscript: DEFAULT_PARTSCRIPT,
        postscript: DEFAULT_POSTSCRIPT,
      })
      .returning();
    const groupInterfaces = [
      { name: "BOOTIF", network: networks.get(BOOTSTRAP.provisionNetwork)! },
      { name: "BMC", network: networks.get(BOOTSTRAP.bmcNetwork)! },
    ];
    for (const groupInterface of groupInterfaces) {
      await tx.insert(schema.groupInterface).values({
        group_id: group.id,
        interface: groupInterface.name,
        network_id: groupInterface.network.id,
      });
    }

    for (const name of BOOTSTRAP.nodes) {
      const [node] = await tx.insert(schema.node).values({ name, group_id: group.id }).returning();
      for (const groupInterface of groupInterfaces) {
        const [nodeInterface] = await tx
          .insert(schema.nodeInterface)
          .values({ node_id: node.id, interface: groupInterface.name })
          .returning();
        const address = await firstFreeAddress(tx, groupInterface.network, 4, now);
        await tx.insert(schema.ipAddress).values({
          network_id: groupInterface.network.id,
          ipaddress: address,
          node_interface_id: nodeInterface.id,
        });
      }
    }
  });
  log.info("Bootstrapped a new cluster with {nodes} nodes in group {group}", {
    nodes: BOOTSTRAP.nodes.length,
    group: BOOTSTRAP.group,
  });
  return true;
}

async function insertNetwork(tx: Transaction, spec: BootstrapNetwork): Promise<NetworkRow> {
  const [address, prefix] = spec.cidr.split("/");
  const controllerInside = spec.name === BOOTSTRAP.controller.network;
  const [row] = await tx
    .insert(schema.network)
    .values({
      name: spec.name,
      network: address,
      subnet: Number(prefix),
      type: spec.type,
      zone: "internal",
      dhcp: spec.dhcpRange !== undefined,
      dhcp_range_begin: spec.dhcpRange?.[0] ?? null,
      dhcp_range_end: spec.dhcpRange?.[1] ?? null,
      gateway: controllerInside ? BOOTSTRAP.controller.ipaddress : null,
      gateway_metric: controllerInside ? 101 : null,
    })
    .returning();
  return row;
}
