"""Interface text of the console (Simplified Chinese), kept apart from the code that uses it."""

from __future__ import annotations

import datetime as dt

from gateway.clock import beijing

__all__ = [
    "BUREAU_NAMES",
    "DIRECTION_LABELS",
    "EVENT_LABELS",
    "FIELD_LABELS",
    "RECORD_TYPE_LABELS",
    "ROLE_LABELS",
    "beijing_text",
    "status_label",
]

BUREAU_NAMES = {
    "500151": "重庆市铜梁区市场监督管理局",
    "510900": "遂宁市市场监督管理局",
    "510100": "成都市市场监督管理局",
}

RECORD_TYPE_LABELS = {
    "business_registration": "市场主体登记",
    "consumer_complaint": "消费投诉",
    "enforcement_referral": "案件线索移送",
    "feedback": "办理反馈",
}

DIRECTION_LABELS = {"outbound": "发出", "inbound": "接收", "local": "本地"}

_STATUS_LABELS = {
    ("outbound", "pending"): "待发送",
    ("outbound", "delivered"): "已送达",
    ("outbound", "rejected"): "被拒收",
    ("outbound", "dead_lettered"): "死信",
    ("inbound", "received"): "待本地接收",
    ("inbound", "delivered"): "已交付本地",
}

STATUS_FILTER_LABELS = {
    "pending": "待发送",
    "delivered": "已送达 / 已交付本地",
    "rejected": "被拒收",
    "dead_lettered": "死信",
    "received": "待本地接收",
}

ROLE_LABELS = {"viewer": "查看员", "officer": "业务经办人", "admin": "系统管理员"}

EVENT_LABELS = {
    "accepted_from_local": "本地系统提交",
    "rejected_from_local": "本地提交被拒",
    "signed": "已签名入队",
    "resealed": "重新签名",
    "sent": "已送达对方",
    "retry_scheduled": "计划重试",
    "rejected_by_peer": "对方拒收",
    "receipt_stored": "回执已保存",
    "received": "已接收",
    "duplicate": "重复报文",
    "rejected": "已拒收",
    "receipt_issued": "已出具回执",
    "delivered_to_local": "已交付本地",
    "dead_lettered": "转入死信",
    "redriven": "重新投递",
    "personal_data_viewed": "查看个人信息",
}

FIELD_LABELS = {
    "record_type": "记录类型",
    "uscc": "统一社会信用代码",
    "name": "名称",
    "entity_type": "主体类型",
    "legal_representative": "法定代表人",
    "legal_representative_id_type": "证件类型",
    "legal_representative_id_number": "证件号码",
    "registered_capital": "注册资本",
    "registered_capital_currency": "币种",
    "established_on": "成立日期",
    "address": "住所",
    "address_division": "住所行政区划",
    "business_scope": "经营范围",
    "registration_authority": "登记机关",
    "status": "状态",
    "approved_on": "核准日期",
    "actual_business_address": "实际经营地址",
    "complaint_number": "投诉编号",
    "registered_at": "登记时间",
    "channel": "投诉渠道",
    "complainant": "投诉人",
    "complainant.name": "投诉人姓名",
    "complainant.phone": "投诉人电话",
    "complainant.id_number": "投诉人证件号码",
    "complainant.address": "投诉人住址",
    "respondent": "被投诉人",
    "respondent.name": "被投诉人名称",
    "respondent.uscc": "被投诉人信用代码",
    "respondent.address": "被投诉人地址",
    "respondent.division": "被投诉人行政区划",
    "subject": "消费标的",
    "category": "类别",
    "amount": "金额",
    "purchased_on": "购买日期",
    "facts": "事实",
    "request": "诉求",
    "referral_number": "移送文号",
    "referring_bureau": "移送机关",
    "receiving_bureau": "接收机关",
    "party.name": "当事人名称",
    "party.uscc": "当事人信用代码",
    "party.id_number": "当事人证件号码",
    "party.address": "当事人地址",
    "violation": "涉嫌违法行为",
    "legal_basis": "法律依据",
    "found_on": "发现日期",
    "evidence": "证据清单",
    "items": "涉案物品",
    "contact_name": "联系人",
    "contact_phone": "联系电话",
    "original_number": "原记录编号",
    "original_type": "原记录类型",
    "note": "说明",
    "handled_at": "办理时间",
    "officer": "经办人",
    "message_id": "报文编号",
    "sender": "发送方",
    "receiver": "接收方",
    "agreement_id": "合作协议",
    "correlation_id": "关联报文",
    "created_at": "创建时间",
    "payload_sha256": "载荷摘要 (SHA-256)",
    "suite": "签名算法",
    "key_id": "密钥标识",
}


def status_label(direction: str, status: str) -> str:
    return _STATUS_LABELS.get((direction, status), status)


def beijing_text(value: str | None) -> str:
    """A stored ISO time as Beijing wall-clock text (anything else as it is)."""
    if not value:
        return ""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return beijing(when)
