"""The ControlNets, T2I-Adapters and IP-Adapters the studio knows by name, each with the family it is
made for: the tiny models' own (builtin: they fit only the tiny models), and the real ones A1111 users
know. The
page's model boxes list those that fit the model (the first that fits is a box's default); the
A1111 API's `/controlnet/model_list` names them after the controlnets folder's files. Any hub id,
folder or file can be given besides."""

from __future__ import annotations

KNOWN_MODELS = {"builtin:controlnet/sd15": "sd15", "builtin:controlnet/sdxl": "sdxl",
                "builtin:controlnet/sdxl-union": "sdxl", "builtin:controlnet/flux": "flux",
                "builtin:controlnet/flux-union": "flux", "builtin:controlnet/sd3": "sd3",
                "lllyasviel/control_v11p_sd15_canny": "sd15", "lllyasviel/control_v11p_sd15_scribble": "sd15",
                "lllyasviel/control_v11f1p_sd15_depth": "sd15", "lllyasviel/control_v11f1e_sd15_tile": "sd15",
                "lllyasviel/control_v11p_sd15_openpose": "sd15", "xinsir/controlnet-union-sdxl-1.0": "sdxl",
                "diffusers/controlnet-canny-sdxl-1.0": "sdxl", "InstantX/FLUX.1-dev-Controlnet-Union": "flux",
                "InstantX/FLUX.1-dev-Controlnet-Canny": "flux",
                "stabilityai/stable-diffusion-3.5-large-controlnet-canny": "sd3",
                # T2I-Adapters (studio/control/t2i_adapter.py): TencentARC's, in the same boxes.
                "TencentARC/t2iadapter_canny_sd15v2": "sd15", "TencentARC/t2iadapter_sketch_sd15v2": "sd15",
                "TencentARC/t2iadapter_depth_sd15v2": "sd15", "TencentARC/t2iadapter_zoedepth_sd15v1": "sd15",
                "TencentARC/t2i-adapter-canny-sdxl-1.0": "sdxl", "TencentARC/t2i-adapter-sketch-sdxl-1.0": "sdxl",
                "TencentARC/t2i-adapter-lineart-sdxl-1.0": "sdxl",
                "TencentARC/t2i-adapter-depth-midas-sdxl-1.0": "sdxl",
                "TencentARC/t2i-adapter-depth-zoe-sdxl-1.0": "sdxl", "TencentARC/t2i-adapter-openpose-sdxl-1.0": "sdxl"}
# The image prompts' adapters: the tiny models' own, the ones A1111 users know (h94/IP-Adapter), XLabs' FLUX one.
KNOWN_ADAPTERS = {"builtin:ip-adapter/sd15": "sd15", "builtin:ip-adapter/sdxl": "sdxl",
                  "builtin:ip-adapter/flux": "flux", "ip-adapter_sd15": "sd15", "ip-adapter_sd15_light": "sd15",
                  "ip-adapter-plus_sd15": "sd15", "ip-adapter-plus-face_sd15": "sd15", "ip-adapter_sdxl": "sdxl",
                  "ip-adapter_sdxl_vit-h": "sdxl", "ip-adapter-plus_sdxl_vit-h": "sdxl",
                  "ip-adapter-plus-face_sdxl_vit-h": "sdxl", "XLabs-AI/flux-ip-adapter": "flux"}
