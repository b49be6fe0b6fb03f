CREATE TABLE `cluster` (
	`id` integer PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`user` text,
	`domain_search` text,
	`nameserver_ip` text,
	`forwardserver_ip` text,
	`ntp_server` text,
	`technical_contacts` text,
	`provision_method` text,
	`provision_fallback` text,
	`debug` integer DEFAULT false NOT NULL,
	`security` integer DEFAULT false NOT NULL,
	`packing_bootpause` integer DEFAULT true NOT NULL,
	`createnode_ondemand` integer DEFAULT true NOT NULL,
	`createnode_macashost` integer DEFAULT false NOT NULL,
	`nextnode_discover` integer DEFAULT false NOT NULL,
	`bind_legacy` integer DEFAULT false NOT NULL,
	`dnssec_enable` integer,
	`dnssec_validation` integer,
	`dns_serial` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `controller` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`hostname` text NOT NULL,
	`beacon` integer DEFAULT false NOT NULL,
	`shadow` integer DEFAULT false NOT NULL,
	`status` text,
	`vendor` text,
	`serverport` integer DEFAULT 7050 NOT NULL,
	`endpoint` text,
	`seen` integer,
	`created` text DEFAULT CURRENT_TIMESTAMP NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `controller_hostname_unique` ON `controller` (`hostname`);--> statement-breakpoint
CREATE TABLE `ip_address` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`network_id` integer NOT NULL,
	`ipaddress` text,
	`ipaddress_ipv6` text,
	`dhcp` integer DEFAULT false NOT NULL,
	`node_interface_id` integer,
	`controller_id` integer,
	`switch_id` integer,
	`other_device_id` integer,
	FOREIGN KEY (`network_id`) REFERENCES `network`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`node_interface_id`) REFERENCES `node_interface`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`controller_id`) REFERENCES `controller`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`switch_id`) REFERENCES `switch`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`other_device_id`) REFERENCES `other_device`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "ip_address_one_owner" CHECK(("ip_address"."node_interface_id" IS NOT NULL) + ("ip_address"."controller_id" IS NOT NULL) + ("ip_address"."switch_id" IS NOT NULL) + ("ip_address"."other_device_id" IS NOT NULL) = 1)
);
--> statement-breakpoint
CREATE UNIQUE INDEX `ip_address_node_interface_id_unique` ON `ip_address` (`node_interface_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `ip_address_switch_id_unique` ON `ip_address` (`switch_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `ip_address_other_device_id_unique` ON `ip_address` (`other_device_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `ip_address_network_ipv4` ON `ip_address` (`network_id`,`ipaddress`);--> statement-breakpoint
CREATE UNIQUE INDEX `ip_address_network_ipv6` ON `ip_address` (`network_id`,`ipaddress_ipv6`);--> statement-breakpoint
CREATE INDEX `ip_address_ipv4` ON `ip_address` (`ipaddress`);--> statement-breakpoint
CREATE INDEX `ip_address_ipv6` ON `ip_address` (`ipaddress_ipv6`);--> statement-breakpoint
CREATE UNIQUE INDEX `ip_address_controller_network` ON `ip_address` (`controller_id`,`network_id`);--> statement-breakpoint
CREATE TABLE `network` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`network` text,
	`subnet` integer,
	`network_ipv6` text,
	`subnet_ipv6` integer,
	`gateway` text,
	`gateway_ipv6` text,
	`gateway_metric` integer,
	`nameserver_ip` text,
	`nameserver_ip_ipv6` text,
	`ntp_server` text,
	`dhcp` integer DEFAULT false NOT NULL,
	`dhcp_nodes_in_pool` integer DEFAULT false NOT NULL,
	`dhcp_nodes_only` integer DEFAULT false NOT NULL,
	`dhcp_range_begin` text,
	`dhcp_range_end` text,
	`dhcp_range_begin_ipv6` text,
	`dhcp_range_end_ipv6` text,
	`dhcp_relay` text,
	`zone` text DEFAULT 'internal' NOT NULL,
	`shared` text,
	`type` text DEFAULT 'ethernet' NOT NULL,
	`non_authoritative` integer DEFAULT false NOT NULL,
	`comment` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `network_name_unique` ON `network` (`name`);--> statement-breakpoint
CREATE TABLE `reserved_ip_address` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`network_id` integer NOT NULL,
	`ipaddress` text NOT NULL,
	`expires_at` integer NOT NULL,
	FOREIGN KEY (`network_id`) REFERENCES `network`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `reserved_ip_address_network_ip` ON `reserved_ip_address` (`network_id`,`ipaddress`);--> statement-breakpoint
CREATE TABLE `bmcsetup` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`userid` integer,
	`username` text,
	`password` text,
	`netchannel` integer,
	`mgmtchannel` integer,
	`comment` text,
	`unmanaged_bmc_users` text,
	`cipher_suite` integer,
	`privilege` text,
	`retries` integer,
	`timeout` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `bmcsetup_name_unique` ON `bmcsetup` (`name`);--> statement-breakpoint
CREATE TABLE `osimage` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`grab_filesystems` text,
	`grab_exclude` text,
	`initrdfile` text,
	`kernelfile` text,
	`kernelmodules` text,
	`kerneloptions` text,
	`kernelversion` text,
	`path` text,
	`imagefile` text,
	`distribution` text,
	`osrelease` text,
	`tag_id` integer,
	`changed` integer DEFAULT false NOT NULL,
	`comment` text,
	FOREIGN KEY (`tag_id`) REFERENCES `osimage_tag`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `osimage_name_unique` ON `osimage` (`name`);--> statement-breakpoint
CREATE TABLE `osimage_tag` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`osimage_id` integer NOT NULL,
	`name` text NOT NULL,
	`kernelfile` text,
	`initrdfile` text,
	`imagefile` text,
	`kerneloptions` text,
	FOREIGN KEY (`osimage_id`) REFERENCES `osimage`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `osimage_tag_image_name` ON `osimage_tag` (`osimage_id`,`name`);--> statement-breakpoint
CREATE TABLE `other_device` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`macaddress` text,
	`vendor` text,
	`comment` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `other_device_name_unique` ON `other_device` (`name`);--> statement-breakpoint
CREATE UNIQUE INDEX `other_device_macaddress_unique` ON `other_device` (`macaddress`);--> statement-breakpoint
CREATE TABLE `switch` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`macaddress` text,
	`oid` text,
	`read` text,
	`rw` text,
	`uplinkports` text,
	`vendor` text,
	`netboot` integer,
	`default_url` text,
	`bootfile` text,
	`ztpconfig` text,
	`ztpformat` text,
	`comment` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `switch_name_unique` ON `switch` (`name`);--> statement-breakpoint
CREATE UNIQUE INDEX `switch_macaddress_unique` ON `switch` (`macaddress`);--> statement-breakpoint
CREATE TABLE `group_interface` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`group_id` integer NOT NULL,
	`interface` text NOT NULL,
	`network_id` integer,
	`mtu` text,
	`vlanid` text,
	`vlan_parent` text,
	`bond_mode` text,
	`bond_slaves` text,
	`dhcp` integer DEFAULT false NOT NULL,
	`options` text,
	FOREIGN KEY (`group_id`) REFERENCES `node_group`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`network_id`) REFERENCES `network`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `group_interface_group_name` ON `group_interface` (`group_id`,`interface`);--> statement-breakpoint
CREATE TABLE `node_group` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`bmcsetup_id` integer,
	`setupbmc` integer,
	`domain` text,
	`osimage_id` integer,
	`osimagetag_id` integer,
	`kerneloptions` text,
	`ipxe_kernel` text,
	`prescript` text,
	`partscript` text,
	`postscript` text,
	`netboot` integer,
	`bootmenu` integer,
	`comment` text,
	`roles` text,
	`scripts` text,
	`provision_interface` text,
	`provision_method` text,
	`provision_fallback` text,
	`unmanaged_bmc_users` text,
	FOREIGN KEY (`bmcsetup_id`) REFERENCES `bmcsetup`(`id`) ON UPDATE no action ON DELETE restrict,
	FOREIGN KEY (`osimage_id`) REFERENCES `osimage`(`id`) ON UPDATE no action ON DELETE restrict,
	FOREIGN KEY (`osimagetag_id`) REFERENCES `osimage_tag`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_group_name_unique` ON `node_group` (`name`);--> statement-breakpoint
CREATE TABLE `node` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`group_id` integer NOT NULL,
	`osimage_id` integer,
	`osimagetag_id` integer,
	`kerneloptions` text,
	`ipxe_kernel` text,
	`switch_id` integer,
	`switchport` text,
	`service` integer DEFAULT false NOT NULL,
	`bmcsetup_id` integer,
	`setupbmc` integer,
	`comment` text,
	`roles` text,
	`scripts` text,
	`vendor` text,
	`assettag` text,
	`prescript` text,
	`partscript` text,
	`postscript` text,
	`netboot` integer,
	`bootmenu` integer,
	`provision_interface` text,
	`provision_method` text,
	`provision_fallback` text,
	`tpm_uuid` text,
	`tpm_pubkey` text,
	`tpm_sha256` text,
	`unmanaged_bmc_users` text,
	FOREIGN KEY (`group_id`) REFERENCES `node_group`(`id`) ON UPDATE no action ON DELETE restrict,
	FOREIGN KEY (`osimage_id`) REFERENCES `osimage`(`id`) ON UPDATE no action ON DELETE restrict,
	FOREIGN KEY (`osimagetag_id`) REFERENCES `osimage_tag`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`switch_id`) REFERENCES `switch`(`id`) ON UPDATE no action ON DELETE restrict,
	FOREIGN KEY (`bmcsetup_id`) REFERENCES `bmcsetup`(`id`) ON UPDATE no action ON DELETE restrict
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_name_unique` ON `node` (`name`);--> statement-breakpoint
CREATE INDEX `node_group_id` ON `node` (`group_id`);--> statement-breakpoint
CREATE INDEX `node_switch_port` ON `node` (`switch_id`,`switchport`);--> statement-breakpoint
CREATE TABLE `node_interface` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`node_id` integer NOT NULL,
	`interface` text NOT NULL,
	`macaddress` text,
	`mtu` text,
	`vlanid` text,
	`vlan_parent` text,
	`bond_mode` text,
	`bond_slaves` text,
	`options` text,
	FOREIGN KEY (`node_id`) REFERENCES `node`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_interface_macaddress_unique` ON `node_interface` (`macaddress`);--> statement-breakpoint
CREATE UNIQUE INDEX `node_interface_node_name` ON `node_interface` (`node_id`,`interface`);--> statement-breakpoint
CREATE TABLE `node_status` (
	`node_id` integer PRIMARY KEY NOT NULL,
	`state` text,
	`status` text,
	`updated` integer NOT NULL,
	FOREIGN KEY (`node_id`) REFERENCES `node`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `group_secret` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`group_id` integer NOT NULL,
	`name` text NOT NULL,
	`content` text NOT NULL,
	`path` text,
	FOREIGN KEY (`group_id`) REFERENCES `node_group`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `group_secret_group_name` ON `group_secret` (`group_id`,`name`);--> statement-breakpoint
CREATE TABLE `node_secret` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`node_id` integer NOT NULL,
	`name` text NOT NULL,
	`content` text NOT NULL,
	`path` text,
	FOREIGN KEY (`node_id`) REFERENCES `node`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `node_secret_node_name` ON `node_secret` (`node_id`,`name`);--> statement-breakpoint
CREATE TABLE `job` (
	`request_id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`object` text NOT NULL,
	`state` text NOT NULL,
	`username` text,
	`params` text,
	`controller` text,
	`created` integer NOT NULL,
	`updated` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `job_kind_object_state` ON `job` (`kind`,`object`,`state`);--> statement-breakpoint
CREATE TABLE `job_message` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`request_id` text NOT NULL,
	`message` text NOT NULL,
	`status` integer DEFAULT 200 NOT NULL,
	`created` integer NOT NULL,
	`read` integer DEFAULT false NOT NULL,
	FOREIGN KEY (`request_id`) REFERENCES `job`(`request_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `job_message_request` ON `job_message` (`request_id`,`read`);--> statement-breakpoint
CREATE TABLE `ha_lease` (
	`id` integer PRIMARY KEY NOT NULL,
	`holder` text,
	`expires_at` integer DEFAULT 0 NOT NULL,
	`overrule` integer DEFAULT false NOT NULL,
	`updated` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `journal` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`controller` text NOT NULL,
	`task` text NOT NULL,
	`payload` text,
	`sent_by` text,
	`tries` integer DEFAULT 0 NOT NULL,
	`created` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `journal_controller` ON `journal` (`controller`,`id`);