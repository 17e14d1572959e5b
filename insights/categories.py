"""Readable names of merchant category codes (ISO 18245 MCCs), in English and Simplified Chinese.

Only the categories members are told about ("because you spend on dining"); a code not listed
here is shown as the code itself.
"""

from loyalty.translation import translated_text

# code -> (English, Simplified Chinese)
MCC_NAMES: dict[str, tuple[str, str]] = {
    "5811": ("catering", "餐饮外卖"),
    "5812": ("dining", "餐饮"),
    "5813": ("dining", "餐饮"),
    "5814": ("dining", "餐饮"),
    "5411": ("groceries", "超市购物"),
    "5499": ("groceries", "超市购物"),
    "4511": ("air travel", "航空出行"),
    "4111": ("transit", "公共交通"),
    "4121": ("taxis", "打车出行"),
    "4722": ("travel", "旅游"),
    "7011": ("hotels", "酒店住宿"),
    "5541": ("fuel", "加油"),
    "5542": ("fuel", "加油"),
    "5732": ("electronics", "数码电器"),
    "5311": ("department stores", "百货商场"),
    "5651": ("clothing", "服饰"),
    "5691": ("clothing", "服饰"),
    "5912": ("pharmacies", "药店"),
    "8062": ("health care", "医疗健康"),
    "8011": ("health care", "医疗健康"),
    "8220": ("education", "教育"),
    "7832": ("cinemas", "电影"),
    "7997": ("sports and clubs", "运动健身"),
    "5977": ("beauty", "美妆"),
}


def mcc_name(code: str) -> str:
    """The category ``code`` names in the active language; the code itself when unknown."""
    names = MCC_NAMES.get(code)
    if names is None:
        return code
    return translated_text(en=names[0], zh_hans=names[1])
