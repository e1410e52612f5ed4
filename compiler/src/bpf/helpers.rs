//! The kernel helper functions rtap calls, with their ids and names.

/// The kernel helpers rtap calls, with their ids from `enum bpf_func_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Helper {
    MapLookupElem = 1,
    MapUpdateElem = 2,
    MapDeleteElem = 3,
    KtimeGetNs = 5,
    GetPrandomU32 = 7,
    GetSmpProcessorId = 8,
    GetCurrentPidTgid = 14,
    GetCurrentUidGid = 15,
    GetCurrentComm = 16,
    GetCurrentTask = 35,
    GetStack = 67,
    ProbeReadUser = 112,
    ProbeReadKernel = 113,
    ProbeReadUserStr = 114,
    ProbeReadKernelStr = 115,
    Jiffies64 = 118,
    KtimeGetBootNs = 125,
    RingbufOutput = 130,
    RingbufReserve = 131,
    RingbufSubmit = 132,
    RingbufDiscard = 133,
    RingbufQuery = 134,
    TaskStorageGet = 156,
    GetCurrentTaskBtf = 158,
    ForEachMapElem = 164,
    GetFuncIp = 173,
    MapLookupPercpuElem = 195,
    KtimeGetTaiNs = 208,
}

impl Helper {
    const ALL: [Helper; 28] = [
        Helper::MapLookupElem,
        Helper::MapUpdateElem,
        Helper::MapDeleteElem,
        Helper::KtimeGetNs,
        Helper::GetPrandomU32,
        Helper::GetSmpProcessorId,
        Helper::GetCurrentPidTgid,
        Helper::GetCurrentUidGid,
        Helper::GetCurrentComm,
        Helper::GetCurrentTask,
        Helper::GetStack,
        Helper::ProbeReadUser,
        Helper::ProbeReadKernel,
        Helper::ProbeReadUserStr,
        Helper::ProbeReadKernelStr,
        Helper::Jiffies64,
        Helper::KtimeGetBootNs,
        Helper::RingbufOutput,
        Helper::RingbufReserve,
        Helper::RingbufSubmit,
        Helper::RingbufDiscard,
        Helper::RingbufQuery,
        Helper::TaskStorageGet,
        Helper::GetCurrentTaskBtf,
        Helper::ForEachMapElem,
        Helper::GetFuncIp,
        Helper::MapLookupPercpuElem,
        Helper::KtimeGetTaiNs,
    ];

    /// The kernel's name for the helper, as bpftool prints it.
    pub fn name(self) -> &'static str {
        match self {
            Helper::MapLookupElem => "bpf_map_lookup_elem",
            Helper::MapUpdateElem => "bpf_map_update_elem",
            Helper::MapDeleteElem => "bpf_map_delete_elem",
            Helper::KtimeGetNs => "bpf_ktime_get_ns",
            Helper::GetPrandomU32 => "bpf_get_prandom_u32",
            Helper::GetSmpProcessorId => "bpf_get_smp_processor_id",
            Helper::GetCurrentPidTgid => "bpf_get_current_pid_tgid",
            Helper::GetCurrentUidGid => "bpf_get_current_uid_gid",
            Helper::GetCurrentComm => "bpf_get_current_comm",
            Helper::GetCurrentTask => "bpf_get_current_task",
            Helper::TaskStorageGet => "bpf_task_storage_get",
            Helper::GetCurrentTaskBtf => "bpf_get_current_task_btf",
            Helper::GetStack => "bpf_get_stack",
            Helper::ProbeReadUser => "bpf_probe_read_user",
            Helper::ProbeReadKernel => "bpf_probe_read_kernel",
            Helper::ProbeReadUserStr => "bpf_probe_read_user_str",
            Helper::ProbeReadKernelStr => "bpf_probe_read_kernel_str",
            Helper::Jiffies64 => "bpf_jiffies64",
            Helper::KtimeGetBootNs => "bpf_ktime_get_boot_ns",
            Helper::RingbufOutput => "bpf_ringbuf_output",
            Helper::RingbufReserve => "bpf_ringbuf_reserve",
            Helper::RingbufSubmit => "bpf_ringbuf_submit",
            Helper::RingbufDiscard => "bpf_ringbuf_discard",
            Helper::RingbufQuery => "bpf_ringbuf_query",
            Helper::ForEachMapElem => "bpf_for_each_map_elem",
            Helper::GetFuncIp => "bpf_get_func_ip",
            Helper::MapLookupPercpuElem => "bpf_map_lookup_percpu_elem",
            Helper::KtimeGetTaiNs => "bpf_ktime_get_tai_ns",
        }
    }

    pub fn from_id(id: i32) -> Option<Helper> {
        Helper::ALL.into_iter().find(|h| *h as i32 == id)
    }
}
